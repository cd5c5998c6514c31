"""pip metadata for the ROS-free Python package (the ROS build is CMakeLists.txt)."""

from pathlib import Path

from setuptools import find_packages, setup


def requirements(name: str = "requirements.txt") -> list[str]:
    """The requirement lines of a requirements file, following `-r other.txt`: the one list
    of run-time dependencies (requirements.txt)."""
    out = []
    for line in (Path(__file__).resolve().parent / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            out += requirements(line[2:].strip())
        elif line:
            out.append(line)
    return out


setup(
    name="ovseg_ros",
    version="0.1.0",
    packages=find_packages(include=["ovseg_ros", "ovseg_ros.*"]),
    python_requires=">=3.10",
    install_requires=requirements(),
    # The onnxruntime backend of the dense encoder (CPU fp32 and int8; README, Backends):
    # pip install 'ovseg_ros[onnxruntime]'. The core runs without it.
    # `ovseg bag --ray`: many bags on a Ray cluster (README, Recorded data).
    extras_require={"onnxruntime": ["onnxruntime>=1.20", "onnx>=1.17", "onnxscript>=0.5"],
                    "ray": ["ray>=2.40"]},
    entry_points={"console_scripts": ["ovseg=ovseg_ros.cli.entry:main"]},
)
