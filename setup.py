"""pip metadata for the ROS-free Python package (the ROS build is CMakeLists.txt)."""

from setuptools import find_packages, setup

setup(
    name="ovseg_ros",
    version="0.1.0",
    packages=find_packages(include=["ovseg_ros", "ovseg_ros.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "pillow",
        "pyyaml",
        "torch",
        "open_clip_torch",
        "timm",
        "tqdm",
    ],
    # The onnxruntime backend of the dense encoder (CPU fp32 and int8; README, Backends):
    # pip install 'ovseg_ros[onnxruntime]'. The core runs without it.
    extras_require={"onnxruntime": ["onnxruntime>=1.20", "onnx>=1.17", "onnxscript>=0.5"]},
    entry_points={"console_scripts": ["ovseg=ovseg_ros.cli.main:main"]},
)
