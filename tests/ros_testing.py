"""Helpers shared by the ROS test modules (not a test module; ``tests`` is on pytest's pythonpath).

Kept out of conftest.py because test modules import these directly: with ``--import-mode=importlib``
a conftest is not importable by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` every ``step`` seconds until it is true or ``timeout`` seconds pass; its last value.

    DDS delivery and discovery take a variable time on a loaded machine: tests wait for what they
    assert instead of sleeping a fixed time.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class SpinningFusionNode:
    """A real FusionNode plus a test node ``io`` for the test's own endpoints, spun in a background thread.

    Subclasses create their publishers and subscriptions on ``io`` between ``__init__`` and :meth:`spin`,
    so every endpoint exists before the executor starts. rclpy is imported here, not at module level:
    the modules using this skip first when rclpy is not installed.
    """

    def __init__(self, context, params: dict, io_name: str) -> None:
        from rclpy.node import Node
        from rclpy.parameter import Parameter

        from lrcfuse_ros.fusion_node import FusionNode

        self.node = FusionNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.io = Node(io_name, context=context)

    def spin(self) -> None:
        """Spin both nodes in a 3-thread executor on a daemon thread (stopped by :meth:`close`)."""
        import threading

        from rclpy.executors import MultiThreadedExecutor

        self.executor = MultiThreadedExecutor(num_threads=3, context=self.node.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.io)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()
        self.thread.join(timeout=5)
