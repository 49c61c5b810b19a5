"""Scoring detections with pycocotools' ``COCOeval``: the YOLO ground truth and the detections in COCO form (in
memory), AP@0.5 and AP@0.5:0.95 per class and their mean over the classes (``all``), and the precision-recall
curve at IoU 0.5."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dependencies import require
from .interface import Detections

__all__ = ["COCO_IOUS", "RECALL_POINTS", "ClassAP", "GroundTruth", "coco_ap"]

COCO_IOUS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval's recall thresholds


@dataclass
class GroundTruth:
    """The pooled ground truth in COCO form (category id = dataset class id + 1, image ids from 1)."""

    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    classes: dict[int, str] = field(default_factory=dict)  # dataset class id -> name

    def add_image(self, name: str, width: int, height: int, boxes: Sequence[Sequence[float]]) -> int:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for cls, x1, y1, x2, y2 in boxes:
            w, h = x2 - x1, y2 - y1
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls) + 1,
                    "bbox": [x1, y1, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        return image_id

    def coco_dict(self, class_ids: Iterable[int]) -> dict[str, Any]:
        return {
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": c + 1, "name": self.classes.get(c, str(c))} for c in sorted(class_ids)],
        }

    def counts(self) -> dict[int, int]:
        """Objects per dataset class."""
        out: dict[int, int] = {}
        for a in self.annotations:
            out[a["category_id"] - 1] = out.get(a["category_id"] - 1, 0) + 1
        return out


@dataclass
class ClassAP:
    """AP of one class (or ``all``): AP@0.5, AP@0.5:0.95 and the precision at each of the 101 recall points
    at IoU 0.5 (NaN where the curve does not reach that recall)."""

    name: str
    map50: float
    map50_95: float
    precision50: np.ndarray


def _detections_to_coco(detections: Mapping[int, Detections], to_dataset: Mapping[int, int]) -> list[dict[str, Any]]:
    rows = []
    for image_id, det in detections.items():
        for box, score, cls in zip(det.boxes, det.scores, det.class_ids):
            dataset_cls = to_dataset.get(int(cls))
            if dataset_cls is None:  # a class that is not evaluated
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            rows.append(
                {
                    "image_id": image_id,
                    "category_id": dataset_cls + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return rows


def coco_ap(
    gt: GroundTruth,
    detections: Mapping[int, Detections],
    class_ids: Sequence[int],
    to_dataset: Mapping[int, int],
    image_ids: Sequence[int] | None = None,
) -> list[ClassAP]:
    """pycocotools' ``COCOeval`` (bbox, all areas, 100 detections per image) of ``detections`` (image id ->
    detections with *detector* class ids, mapped by ``to_dataset``) against ``gt`` on ``image_ids`` (default: all).

    Returns one :class:`ClassAP` per class of ``class_ids`` that has ground truth, then ``all`` (their mean, as
    COCO's mAP). With no detection at all every AP is 0.
    """
    require("detect", "detection mAP")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    counts = gt.counts()
    present = [c for c in sorted(class_ids) if counts.get(c, 0) > 0]
    ids = list(image_ids) if image_ids is not None else [im["id"] for im in gt.images]
    rows = _detections_to_coco({i: d for i, d in detections.items() if i in set(ids)}, to_dataset)
    rows = [r for r in rows if r["category_id"] - 1 in present]
    if not present:
        return []
    if not rows:
        nan = np.full(len(RECALL_POINTS), np.nan)
        return [ClassAP(gt.classes.get(c, str(c)), 0.0, 0.0, nan) for c in present] + [ClassAP("all", 0.0, 0.0, nan)]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = gt.coco_dict(present)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(rows)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = ids
        evaluator.params.catIds = [c + 1 for c in present]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, max detections]; -1 = no ground truth
    out = []
    per_class_50, per_class_all, curves = [], [], []
    for k, c in enumerate(present):
        p = precision[:, :, k, 0, -1]
        ap50 = float(np.mean(p[0][p[0] > -1])) if (p[0] > -1).any() else math.nan
        ap = float(np.mean(p[p > -1])) if (p > -1).any() else math.nan
        curve = np.where(p[0] > -1, p[0], np.nan)
        per_class_50.append(ap50)
        per_class_all.append(ap)
        curves.append(curve)
        out.append(ClassAP(gt.classes.get(c, str(c)), ap50, ap, curve))
    with np.errstate(all="ignore"):
        mean_curve = np.nanmean(np.stack(curves), axis=0) if curves else np.full(len(RECALL_POINTS), np.nan)
    out.append(ClassAP("all", float(np.nanmean(per_class_50)), float(np.nanmean(per_class_all)), mean_curve))
    return out
