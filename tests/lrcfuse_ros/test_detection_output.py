"""Detections as ROS payloads: JSON fallback, and vision_msgs where installed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrcfuse_model.detection.detectors import Detections
from lrcfuse_ros import detection_output


class _Header:
    class stamp:  # noqa: N801 - mimics builtin_interfaces/Time
        sec, nanosec = 12, 34

    frame_id = "rgb_camera"


def _detections() -> Detections:
    return Detections(
        boxes=np.array([[10, 20, 50, 80]], np.float32),
        scores=np.array([0.875], np.float32),
        class_ids=np.array([2], np.int64),
        names=["person", "bicycle", "car"],
    )


def test_json_payload_holds_class_score_and_box() -> None:
    payload = json.loads(detection_output.detections_json(_Header, _detections()))
    assert payload["stamp"] == {"sec": 12, "nanosec": 34} and payload["frame_id"] == "rgb_camera"
    (det,) = payload["detections"]
    assert det["class_name"] == "car" and det["class_id"] == 2 and det["score"] == 0.875
    assert det["box_xyxy"] == [10, 20, 50, 80] and det["center_xy"] == [30, 50] and det["size_xy"] == [40, 60]


def test_vision_msgs_array() -> None:
    if not detection_output.VISION_MSGS_AVAILABLE:
        with pytest.raises(ImportError, match="vision_msgs is not installed"):
            detection_output.detection2d_array(_Header, _detections())
        pytest.skip("vision_msgs not installed (no PyPI wheel); the JSON fallback is tested instead")
    from std_msgs.msg import Header

    header = Header(frame_id="rgb_camera")
    array = detection_output.detection2d_array(header, _detections())
    (det,) = array.detections
    assert det.results[0].hypothesis.class_id == "car"
    bbox = det.bbox
    assert (bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y) == (30, 50, 40, 60)
