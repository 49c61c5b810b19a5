"""``fused/camera_info``: the RGB camera's calibration republished with each fused frame's header.

The fused image lies in the RGB camera's frame (the thermal image is warped onto it), so the RGB
camera's intrinsics describe it; rviz, image_proc and detectors that need intrinsics pair an image
with the ``camera_info`` next to it that has the same header. The last ``rgb/camera_info`` received is
sent once per fused frame, stamped with that frame's header; nothing is sent while none has come (a
camera without calibration publishes none). Its size is checked against the fused frame: a
calibration for another resolution is not sent, with a warning (throttled by the caller).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo

from .inputs import CameraInput
from .qos import image_qos

RGB_INFO_TOPIC = "rgb/camera_info"
FUSED_INFO_TOPIC = "fused/camera_info"


class CameraInfoRelay:
    """Subscribes to ``rgb/camera_info`` (QoS as the image inputs), publishes ``fused/camera_info`` on demand."""

    def __init__(self, node: Node, reliability: str = "auto", depth: int = 5) -> None:
        self._lock = threading.Lock()
        self._latest: CameraInfo | None = None
        self.input = CameraInput(node, RGB_INFO_TOPIC, self._on_info, "raw", reliability, depth, msg_type=CameraInfo)
        self.publisher = node.create_publisher(CameraInfo, FUSED_INFO_TOPIC, image_qos("reliable", depth))
        self.sent = 0

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._latest = msg

    def publish(self, header: Any, width: int, height: int) -> str | None:
        """Send the latest calibration with ``header``; returns why not (a message to log) or None."""
        with self._lock:
            latest = self._latest
        if latest is None:
            return None  # no calibration published: nothing to relay, nothing to warn about
        if (int(latest.width), int(latest.height)) not in ((width, height), (0, 0)):
            return (
                f"'{self.input.topic_name}' is for {latest.width}x{latest.height} images but the fused image is "
                f"{width}x{height}: fused/camera_info not sent"
            )
        info = copy.copy(latest)  # shallow: only the header is replaced
        info.header = header
        self.publisher.publish(info)
        self.sent += 1
        return None
