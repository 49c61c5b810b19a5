"""Detections on the fused image as ROS messages.

``vision_msgs/Detection2DArray`` (the vision_msgs 4.x layout: one ``Detection2D`` per box with an
``ObjectHypothesisWithPose`` holding the class name and score, and a ``BoundingBox2D`` given by its
centre and size in pixels) when vision_msgs is installed. Without it (it has no PyPI wheel), the same
content goes out as JSON in a ``std_msgs/String``, so nothing is silently lost.
"""

from __future__ import annotations

import json
from typing import Any

try:  # vision_msgs comes with a ROS 2 install (ros-<distro>-vision-msgs), not with the PyPI wheels
    from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

    VISION_MSGS_AVAILABLE = True
except ImportError:
    VISION_MSGS_AVAILABLE = False


def detection_records(detections: Any) -> list[dict[str, Any]]:
    """One dict per detection: class name and id, score, box ``x1 y1 x2 y2`` and its centre/size, in pixels."""
    records = []
    for box, score, class_id in zip(detections.boxes, detections.scores, detections.class_ids):
        x1, y1, x2, y2 = (float(v) for v in box)
        records.append(
            {
                "class_id": int(class_id),
                "class_name": detections.names[int(class_id)],
                "score": round(float(score), 4),
                "box_xyxy": [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
                "center_xy": [round((x1 + x2) / 2, 2), round((y1 + y2) / 2, 2)],
                "size_xy": [round(x2 - x1, 2), round(y2 - y1, 2)],
            }
        )
    return records


def detections_json(header: Any, detections: Any) -> str:
    """The fallback payload: stamp, frame id and :func:`detection_records` as JSON text."""
    return json.dumps(
        {
            "stamp": {"sec": int(header.stamp.sec), "nanosec": int(header.stamp.nanosec)},
            "frame_id": header.frame_id,
            "detections": detection_records(detections),
        }
    )


def detection2d_array(header: Any, detections: Any) -> Any:
    """A ``vision_msgs/Detection2DArray`` (requires vision_msgs; check :data:`VISION_MSGS_AVAILABLE`)."""
    if not VISION_MSGS_AVAILABLE:
        raise ImportError("vision_msgs is not installed (install ros-<distro>-vision-msgs)")
    out = Detection2DArray()
    out.header = header
    for record in detection_records(detections):
        det = Detection2D()
        det.header = header
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = record["class_name"]
        hypothesis.hypothesis.score = float(record["score"])
        det.results = [hypothesis]
        bbox = BoundingBox2D()
        bbox.center.position.x, bbox.center.position.y = record["center_xy"]
        bbox.size_x, bbox.size_y = record["size_xy"]
        det.bbox = bbox
        out.detections.append(det)
    return out
