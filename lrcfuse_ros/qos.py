"""QoS profiles of the image topics, and the hint printed when a subscription never receives data.

Camera drivers publish with sensor-data QoS (best effort); a reliable subscription does not match a
best-effort publisher and silently receives nothing, the classic "my node gets no images" trap.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from .params import RELIABILITIES

_POLICY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """Keep-last ``depth``, volatile, with the given reliability (best_effort = sensor-data QoS)."""
    if reliability not in _POLICY:
        raise ValueError(f"reliability: expected one of {RELIABILITIES}, got {reliability!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_POLICY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def silent_topic_hint(node: Node, topic: str, reliability: str) -> str:
    """Why ``topic`` may be silent, from the publishers the graph shows (cheap: a local graph query)."""
    try:
        publishers = node.get_publishers_info_by_topic(topic)
    except Exception as exc:  # the graph query is only a hint; never let it break the watchdog
        return f"(could not query publishers: {exc})"
    if not publishers:
        return "no publisher on this topic: check the camera driver and the topic remapping"
    offered = sorted({p.qos_profile.reliability.name.lower() for p in publishers})
    if reliability == "reliable" and "best_effort" in offered:
        return (
            f"{len(publishers)} publisher(s) offer {'/'.join(offered)} but this node subscribes reliable: "
            "a reliable subscription never matches a best-effort publisher; set reliability:=best_effort"
        )
    return (
        f"{len(publishers)} publisher(s) ({'/'.join(offered)}) are matched but send nothing: "
        "the camera may have stopped, or large images are dropped by the transport "
        "(see the Fast DDS profile in config/ for the shared-memory segment size)"
    )
