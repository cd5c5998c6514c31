"""pip metadata for the ROS-free Python package (the ROS build is CMakeLists.txt)."""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def requirements(name: str = "requirements.txt") -> list[str]:
    """The requirement lines of a requirements file, following `-r other.txt`: the one list
    of run-time dependencies (requirements.txt)."""
    out = []
    for line in (HERE / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            out += requirements(line[2:].strip())
        elif line:
            out.append(line)
    return out


class BuildPy(build_py):
    """Also ship the repository's msg/*.msg and samples/ inside the package: `ovseg bag`
    registers the message definitions with rosbags (no ROS install needed) and `ovseg demo`
    reads the samples. A source checkout reads both from the repository instead."""

    def run(self) -> None:
        super().run()
        pkg = Path(self.build_lib, "ovseg_ros")
        for pattern, target in (("msg/*.msg", pkg / "frame/definitions/ovseg_ros/msg"),
                                ("samples/*", pkg / "io/samples")):
            target.mkdir(parents=True, exist_ok=True)
            for src in sorted(HERE.glob(pattern)):
                shutil.copy2(src, target / src.name)


setup(
    name="ovseg_ros",
    version="0.1.0",
    packages=find_packages(include=["ovseg_ros", "ovseg_ros.*"]),
    # vision_msgs' and semantic_inference_msgs' definitions (also buildable ROS packages)
    package_data={"ovseg_ros.frame": ["definitions/*/msg/*.msg", "definitions/*/package.xml",
                                      "definitions/*/CMakeLists.txt"],
                  # `ovseg console`'s page: plain HTML/CSS/JS, served as they are
                  "ovseg_ros.cli.console": ["static/*"]},
    cmdclass={"build_py": BuildPy},
    python_requires=">=3.10",
    install_requires=requirements(),
    # The onnxruntime backend of the dense encoder (CPU fp32 and int8; doc/performance.md):
    # pip install '.[onnxruntime]' in a clone. The core runs without it.
    # `ovseg bag --ray`: many bags on a Ray cluster (doc/bags.md).
    extras_require={"onnxruntime": ["onnxruntime>=1.20", "onnx>=1.17", "onnxscript>=0.5"],
                    "ray": ["ray>=2.40"]},
    entry_points={"console_scripts": ["ovseg=ovseg_ros.cli.entry:main"]},
)
