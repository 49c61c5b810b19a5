"""The console scripts of the ROS side (``fusion_node``, ``sample_publisher``, ``fused_recorder``; also what
``ros2 run lrcfuse_ros ...`` starts): each checks that rclpy and the message packages can be imported before it
imports its module, so that a pip install without the ``ros`` extra, or a shell where ROS 2 is not sourced, gets one
line naming what is missing and how to get it (exit status 2) instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib
import sys

from lrcfuse_model.dependencies import MissingDependency, require

__all__ = ["ROS_MODULES", "fused_recorder", "fusion_node", "run", "sample_publisher"]

# What every one of the scripts imports from ROS 2 (a ROS install has them; pip: the `ros` extra's wheels).
ROS_MODULES = ("rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs")


def run(script: str, module: str) -> int:
    """Check :data:`ROS_MODULES`, then run ``module.main()`` (same process, same arguments)."""
    try:
        require("ros", script, modules=ROS_MODULES)
    except MissingDependency as exc:
        print(f"{script}: error: {exc} (or, on a ROS 2 machine, source its setup.bash first)", file=sys.stderr)
        return 2
    return importlib.import_module(module).main()


def fusion_node() -> int:
    return run("fusion_node", "lrcfuse_ros.fusion_node")


def sample_publisher() -> int:
    return run("sample_publisher", "lrcfuse_ros.sample_publisher")


def fused_recorder() -> int:
    return run("fused_recorder", "lrcfuse_ros.fused_recorder")
