"""From a YOLO network's output rows to detections: one post-processing for every YOLO detector.

Two row layouts exist, both ``cx cy w h`` in network-input pixels followed by scores:

* **YOLOv5** rows ``(cx, cy, w, h, objectness, class probabilities...)``: a box's score for a class is objectness x
  class probability, and rows with objectness below the threshold are dropped first (YOLOv5's ``non_max_suppression``);
* **YOLOv8 / YOLO11** (ultralytics' anchor-free heads) rows ``(cx, cy, w, h, class scores...)``: no objectness, the
  class score is the score.

Then the same steps for both: keep scores above ``confidence`` (the best class per box, or with ``multi_label``
every class that passes), the class filter, at most ``max_candidates`` boxes (best first) into class-wise NMS, at most
``max_detections`` out. numpy throughout (:mod:`~lrcfuse_model.detection.boxes`): no torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .boxes import batched_nms, xywh_to_xyxy
from .interface import class_filter_ids

__all__ = ["Selection", "SelectionSettings", "select_detections"]


@dataclass(frozen=True)
class Selection:
    """How boxes are selected: ``confidence`` lowest score kept, ``iou`` NMS threshold, ``class_filter`` class ids
    kept (``None``: all), ``multi_label`` a box may be kept once per passing class (what YOLOv5 does when it measures
    mAP; the default keeps its best class only, as ``detect.py`` and ultralytics' ``predict`` do)."""

    confidence: float = 0.25
    iou: float = 0.45
    class_filter: Sequence[int] | None = None
    multi_label: bool = False
    max_detections: int = 300
    max_candidates: int = 30000

    @classmethod
    def for_detector(
        cls,
        names: Sequence[str],
        detector: str,
        confidence: float,
        iou: float,
        classes: Sequence[str | int] | None,
        multi_label: bool,
        max_detections: int,
        max_candidates: int,
    ) -> Selection:
        """The selection of a detector whose classes are ``names``: ``classes`` (names and/or ids) checked against
        them (:func:`~lrcfuse_model.detection.interface.class_filter_ids`, errors name ``detector``)."""
        class_filter = class_filter_ids(classes, names, detector)
        return cls(float(confidence), float(iou), class_filter, multi_label, max_detections, max_candidates)


class SelectionSettings:
    """``confidence``, ``iou`` and ``class_filter`` of a detector's :class:`Selection` as attributes, readable and
    settable (``lrcfuse detect-eval`` narrows ``class_filter`` to the evaluated classes)."""

    selection: Selection

    @property
    def confidence(self) -> float:
        return self.selection.confidence

    @confidence.setter
    def confidence(self, value: float) -> None:
        self.selection = replace(self.selection, confidence=float(value))

    @property
    def iou(self) -> float:
        return self.selection.iou

    @iou.setter
    def iou(self, value: float) -> None:
        self.selection = replace(self.selection, iou=float(value))

    @property
    def class_filter(self) -> Sequence[int] | None:
        return self.selection.class_filter

    @class_filter.setter
    def class_filter(self, value: Sequence[int] | None) -> None:
        self.selection = replace(self.selection, class_filter=None if value is None else sorted(int(v) for v in value))


def select_detections(
    rows: np.ndarray, objectness: bool, selection: Selection
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rows`` (``N x (4 + [1] + nc)``; ``objectness``: YOLOv5's layout) -> kept ``boxes`` (x1 y1 x2 y2, network-input
    pixels, float32), ``scores`` (float32) and ``class_ids`` (int64), best score first."""
    rows = np.asarray(rows, dtype=np.float32)
    conf = selection.confidence
    if objectness:
        rows = rows[rows[:, 4] > conf]
        class_scores = rows[:, 5:] * rows[:, 4:5]  # YOLOv5's confidence: objectness x class probability
    else:
        class_scores = rows[:, 4:]
    if selection.multi_label:
        box_index, class_ids = np.nonzero(class_scores > conf)
        scores = class_scores[box_index, class_ids]
    else:
        class_ids = class_scores.argmax(1) if len(class_scores) else np.zeros(0, np.int64)
        scores = class_scores[np.arange(len(class_scores)), class_ids]
        box_index = np.nonzero(scores > conf)[0]
        class_ids, scores = class_ids[box_index], scores[box_index]
    if selection.class_filter is not None:
        wanted = np.isin(class_ids, np.asarray(selection.class_filter))
        box_index, class_ids, scores = box_index[wanted], class_ids[wanted], scores[wanted]
    if scores.size > selection.max_candidates:
        top = np.argsort(-scores, kind="stable")[: selection.max_candidates]
        box_index, class_ids, scores = box_index[top], class_ids[top], scores[top]
    boxes = xywh_to_xyxy(rows[box_index, :4])
    keep = batched_nms(boxes, scores, class_ids, selection.iou, selection.max_detections)
    return boxes[keep], scores[keep].astype(np.float32), class_ids[keep].astype(np.int64)
