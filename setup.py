"""lrcfuse: one repository that is both a ROS 2 ament_python package and a pip project."""

from glob import glob

from setuptools import find_packages, setup

package_name = "lrcfuse_ros"

setup(
    name=package_name,
    version="0.1.0",
    description="LRCFuse infrared + visible image fusion: PyTorch training, evaluation and a ROS 2 node",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["lrcfuse_model", "lrcfuse_model.*", "lrcfuse_ros", "lrcfuse_ros.*"]),
    package_data={"lrcfuse_model": ["cfg/*.yaml", "weights/*.pt", "weights/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        # sample pairs for `ros2 run lrcfuse_ros sample_publisher` on an installed package
        ("share/" + package_name + "/samples/ir", glob("samples/ir/*")),
        ("share/" + package_name + "/samples/vi", glob("samples/vi/*")),
    ],
    # What every command needs (fuse, train, eval, bench, the node). Keep in step with package.xml's rosdep keys;
    # tests/lrcfuse_model/test_dependencies.py checks both against every third-party import.
    install_requires=[
        # torch is not pinned here: install it first (CPU build, see README) so pip keeps it.
        "torch>=2.1",
        "numpy>=1.23",
        "pillow>=9",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "scipy>=1.9",  # scipy.ndimage: the fusion metrics of `lrcfuse eval`, the zoom box of its grids
        # OpenCV's colour conversions (Bayer, YUV) for camera encodings; headless: no GUI libraries on a robot.
        "opencv-python-headless>=4.6",
        "setuptools",
    ],
    # What only some commands need, each an extra: the command checks for it first and, when it is missing, stops
    # with one line naming the extra (lrcfuse_model/dependencies.py: EXTRA_MODULES, COMMAND_EXTRAS).
    extras_require={
        "bag": ["rosbags"],  # lrcfuse fuse-bag
        "detect": ["pycocotools"],  # lrcfuse detect-eval (COCO mAP)
        # lrcfuse export (onnx + onnxscript), the onnxruntime backend and the ONNX YOLO detector (onnxruntime)
        "export": ["onnx", "onnxruntime", "onnxscript"],
        # the openvino backend: the default model's fastest CPU runtime (backend auto takes it where installed)
        "openvino": ["openvino"],
        # rclpy and messages from PyPI wheels (pip-only machines); a ROS 2 install has them already.
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-rcl-interfaces",
            "ros-ament-index-python",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-diagnostic-msgs",
            "rosbags",
        ],
        # ultralytics needs a working torchvision, i.e. PyPI's full torch build (several GB): opt in.
        "ultralytics": ["ultralytics"],
        "dev": ["pytest>=7", "ruff"],
    },
    entry_points={
        "console_scripts": [
            "lrcfuse = lrcfuse_model.cli:main",
            # through lrcfuse_ros.console: one line naming what is missing when rclpy is not there, not a traceback
            "fusion_node = lrcfuse_ros.console:fusion_node",
            "sample_publisher = lrcfuse_ros.console:sample_publisher",
            "fused_recorder = lrcfuse_ros.console:fused_recorder",
        ],
    },
    zip_safe=True,
    maintainer="lrcfuse developers",
    maintainer_email="lrcfuse@example.org",
)
