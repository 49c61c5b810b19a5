"""The node's camera inputs: raw or compressed transport, and a subscription QoS that can follow the publishers.

``transport: compressed`` subscribes to image_transport's ``<topic>/compressed``
(``sensor_msgs/CompressedImage``) instead of ``<topic>`` (``sensor_msgs/Image``); both decode through
:func:`lrcfuse_model.streams.image_msg.image_msg_to_array`.

``reliability: auto`` does what ``ros2 bag record`` does: it subscribes once a publisher is discovered,
reliable when every publisher offers reliable, best effort when any offers best effort (a reliable
subscription would not match that one). A reliable subscription to a reliable camera gets lost
fragments of a large image repaired; a best-effort one drops the whole image instead (the loss figures
are in the README). Until a publisher appears there is no subscription; a publisher that appears later
with a weaker offer (best effort) makes the subscription be made again, best effort, with a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from .qos import adapted_reliability, image_qos

TRANSPORTS = ("raw", "compressed")
POLL_S = 0.5  # how often an auto input looks at the graph for new publishers (a local query, cheap)


def transport_topic(topic: str, transport: str) -> str:
    """``thermal/image_raw`` + ``compressed`` -> ``thermal/image_raw/compressed`` (image_transport's naming)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport: expected one of {TRANSPORTS}, got {transport!r}")
    return f"{topic}/compressed" if transport == "compressed" else topic


class CameraInput:
    """One camera subscription: ``topic`` over ``transport``, QoS ``reliability`` (auto | best_effort | reliable).

    ``msg_type`` overrides the type that ``transport`` implies (``sensor_msgs/CameraInfo`` for the camera info).

    ``topic_name`` is the resolved name (remaps and namespace applied) from the start, whether or not the
    subscription exists yet; ``reliability`` is the one in use (``"waiting"`` while auto has no publisher).
    """

    def __init__(
        self,
        node: Node,
        topic: str,
        callback: Callable[[Any], None],
        transport: str = "raw",
        reliability: str = "auto",
        depth: int = 5,
        msg_type: type | None = None,
    ) -> None:
        self._node, self._callback, self._depth = node, callback, depth
        self.msg_type = msg_type or (CompressedImage if transport == "compressed" else Image)
        self._relative = transport_topic(topic, transport)
        self.topic_name = node.resolve_topic_name(self._relative)
        self.auto = reliability == "auto"
        self.reliability = "waiting" if self.auto else reliability
        self.subscription = None
        self._timer = None
        if self.auto:
            self._follow_publishers()
            self._timer = node.create_timer(POLL_S, self._follow_publishers)
        else:
            self._subscribe(reliability)

    def _subscribe(self, reliability: str) -> None:
        if self.subscription is not None:
            self._node.destroy_subscription(self.subscription)
        qos = image_qos(reliability, self._depth)
        self.subscription = self._node.create_subscription(self.msg_type, self._relative, self._callback, qos)
        self.reliability = reliability

    def _follow_publishers(self) -> None:
        try:
            offered = [
                p.qos_profile.reliability.name.lower() for p in self._node.get_publishers_info_by_topic(self.topic_name)
            ]
        except Exception as exc:  # the graph query is only a hint; try again on the next tick
            self._node.get_logger().debug(f"publishers of '{self.topic_name}': {exc}")
            return
        wanted = adapted_reliability(offered)
        if wanted is None or wanted == self.reliability or self.reliability == "best_effort":
            return  # no publisher yet, nothing new, or already matching every publisher there can be
        before = self.reliability
        self._subscribe(wanted)
        self._node.get_logger().info(
            f"reliability auto: subscribed {wanted} to '{self.topic_name}' ({self.msg_type.__name__}), "
            f"publishers offer {'/'.join(sorted(set(offered)))}"
            + (f" (was {before}: a best-effort publisher appeared)" if before != "waiting" else "")
        )

    def destroy(self) -> None:
        """Stop following the graph (the node destroys its subscriptions itself)."""
        if self._timer is not None:
            self._timer.cancel()
