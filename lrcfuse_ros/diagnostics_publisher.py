"""The node's DiagnosticStatus on ``/diagnostics``: through diagnostic_updater where installed, else our own.

As diagnostic_updater does: the absolute ``/diagnostics`` topic (where aggregators listen, whatever the
node's namespace), one status per task named ``<node>: <task>``, a hardware_id. Two choices differ from
its Python Updater, which names the status with the node's short name: here ``<node>`` is the node's
full name without the leading slash (``front/lrcfuse_fusion: fusion``), so two instances in different
namespaces stay apart (in the root namespace the name is what diagnostic_updater gives). With the
updater installed, it is handed a view of the node whose ``get_name()`` is that full name; without it
(diagnostic_updater has no PyPI wheel), a publisher and a timer here do the same job.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from .diagnostics import diagnostic_array

DIAGNOSTICS_TOPIC = "/diagnostics"
TASK = "fusion"

# () -> (level, message, values): what the status says now.
StatusFn = Callable[[], tuple[bytes, str, Mapping[str, str]]]


def full_name(node: Node) -> str:
    """``front/lrcfuse_fusion`` for a node ``lrcfuse_fusion`` in namespace ``/front``."""
    return node.get_fully_qualified_name().lstrip("/")


def default_hardware_id(device: str) -> str:
    """``<hostname>/<device>``: the machine and the compute device the fusion runs on."""
    return f"{socket.gethostname()}/{device}"


class _FullyNamed:
    """The node as diagnostic_updater sees it: everything forwarded, ``get_name()`` the full name."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def get_name(self) -> str:
        return full_name(self._node)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)


class DiagnosticsPublisher:
    """Publishes ``status()`` every ``period_s`` on ``/diagnostics`` (diagnostic_updater where installed)."""

    def __init__(self, node: Node, period_s: float, hardware_id: str, status: StatusFn) -> None:
        self._node = node
        self._status = status
        self.hardware_id = hardware_id
        self.name = f"{full_name(node)}: {TASK}"
        try:
            import diagnostic_updater
        except ImportError:
            diagnostic_updater = None
        self.uses_updater = diagnostic_updater is not None
        if diagnostic_updater is not None:
            try:
                self._updater = diagnostic_updater.Updater(_FullyNamed(node), period=period_s)
            except TypeError:  # releases before the period argument: the updater's parameter sets it
                self._updater = diagnostic_updater.Updater(_FullyNamed(node))
            self._updater.setHardwareID(hardware_id)
            self._updater.add(TASK, self._fill)
        else:
            self._publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
            self._timer = node.create_timer(period_s, self.publish)

    def _fill(self, stat: Any) -> Any:
        """diagnostic_updater's task: fill its DiagnosticStatusWrapper."""
        level, message, values = self._status()
        stat.summary(level, message)
        for key, value in values.items():
            stat.add(key, value)
        return stat

    def publish(self) -> None:
        """Publish the status now (without diagnostic_updater; with it the updater's timer does)."""
        level, message, values = self._status()
        stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(diagnostic_array(stamp, self.name, values, level, message, self.hardware_id))
