"""QoS profiles of the image topics, the reliability that matches discovered publishers, and the hint
printed when a subscription never receives data.

Camera drivers publish with sensor-data QoS (best effort) or ROS's default (reliable); a reliable
subscription does not match a best-effort publisher and silently receives nothing, the classic "my node
gets no images" trap, while a best-effort subscription to a reliable camera loses whole images whenever
one fragment is lost. ``reliability: auto`` (:func:`adapted_reliability`) avoids both.
"""

from __future__ import annotations

from collections.abc import Iterable

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_POLICY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """Keep-last ``depth``, volatile, with the given reliability (best_effort = sensor-data QoS)."""
    if reliability not in _POLICY:
        raise ValueError(f"reliability: expected one of {tuple(_POLICY)}, got {reliability!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_POLICY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def adapted_reliability(offered: Iterable[str]) -> str | None:
    """The subscription reliability matching every publisher, as ``ros2 bag record`` adapts its QoS.

    ``offered``: each publisher's reliability (``reliable`` / ``best_effort``, lower case). Reliable
    when all are reliable (lost fragments get repaired), best_effort when any is best effort (a
    reliable subscription would not match it), ``None`` when there is no publisher (nothing to adapt to yet).
    """
    offered = [str(r).lower() for r in offered]
    if not offered:
        return None
    return "reliable" if all(r == "reliable" for r in offered) else "best_effort"


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
            "a reliable subscription never matches a best-effort publisher; set reliability:=best_effort "
            "(or auto, which follows the publishers)"
        )
    return (
        f"{len(publishers)} publisher(s) ({'/'.join(offered)}) are matched but send nothing: "
        "the camera may have stopped, or large images are dropped by the transport "
        "(see the Fast DDS profile in config/ for the shared-memory segment size)"
    )
