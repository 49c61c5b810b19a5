"""Box geometry of the YOLO detectors, in numpy: letterboxing, boxes back to image pixels, IoU and NMS.

As YOLOv5 / ultralytics inference does it, without torchvision: :func:`letterbox` keeps the aspect ratio and pads
with gray (to a multiple of the stride, or to the fixed input size of an exported model), :func:`scale_boxes` maps
boxes back, :func:`nms` / :func:`batched_nms` keep the best boxes (within each class). numpy, not torch, so that the
ONNX Runtime detector needs no torch at all and both detectors share one implementation.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["LETTERBOX_FILL", "batched_nms", "box_iou", "letterbox", "nms", "scale_boxes", "xywh_to_xyxy"]

LETTERBOX_FILL = 114  # YOLOv5's gray padding value


def letterbox(
    image: np.ndarray,
    size: int = 640,
    stride: int = 32,
    fill: int = LETTERBOX_FILL,
    shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize ``image`` (``H x W x 3``) to fit, keeping its aspect ratio, and pad it with gray ``fill``.

    Without ``shape`` (a network that takes any size): the long side becomes ``size`` and each side is padded to
    a multiple of ``stride``, as YOLOv5's inference does. With ``shape = (height, width)`` (an exported model with
    a fixed input): the image is fitted into that shape and padded to exactly it. The padding is split between the
    two sides. Returns the padded image, the scale ``ratio`` and the ``(left, top)`` padding in pixels;
    :func:`scale_boxes` maps boxes back.
    """
    h, w = image.shape[:2]
    ratio = min(size / h, size / w) if shape is None else min(shape[0] / h, shape[1] / w)
    new_w, new_h = int(round(w * ratio)), int(round(h * ratio))
    if shape is None:
        pad_w, pad_h = (-new_w) % stride, (-new_h) % stride
    else:
        new_w, new_h = min(new_w, shape[1]), min(new_h, shape[0])
        pad_w, pad_h = shape[1] - new_w, shape[0] - new_h
    if (new_w, new_h) != (w, h):
        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    left, top = pad_w // 2, pad_h // 2
    out = np.full((new_h + pad_h, new_w + pad_w, image.shape[2]), fill, dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = image
    return out, ratio, (float(left), float(top))


def scale_boxes(boxes: np.ndarray, ratio: float, pad: tuple[float, float], shape_hw: tuple[int, int]) -> np.ndarray:
    """Boxes ``x1 y1 x2 y2`` in letterboxed pixels -> pixels of the original ``shape_hw`` image, clipped to it."""
    out = np.asarray(boxes, dtype=np.float32).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - pad[0]) / ratio
    out[:, [1, 3]] = (out[:, [1, 3]] - pad[1]) / ratio
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, shape_hw[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, shape_hw[0])
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N x 4, x1 y1 x2 y2) with every box of ``b`` (M x 4): N x M."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    area_a = (a[:, 2] - a[:, 0]).clip(min=0) * (a[:, 3] - a[:, 1]).clip(min=0)
    area_b = (b[:, 2] - b[:, 0]).clip(min=0) * (b[:, 3] - b[:, 1]).clip(min=0)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clip(min=0).prod(2)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clip(min=1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: indices (int64) of the kept boxes, best score first.

    A box is dropped when its IoU with a better-scoring kept box is above ``iou_threshold``; equal scores keep
    their input order. ``max_keep`` stops after that many boxes (the same result as suppressing everything and
    truncating, but cheaper).
    """
    boxes, scores = np.asarray(boxes, dtype=np.float32), np.asarray(scores)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    limit = len(order) if max_keep is None else max_keep
    while order.size and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        overlap = box_iou(boxes[best : best + 1], boxes[rest])[0]
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    max_keep: int | None = None,
) -> np.ndarray:
    """:func:`nms` within each class only (boxes of different classes never suppress each other)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Shifting each class to its own far-away region makes cross-class IoU zero: one NMS pass does all classes.
    span = max(float(boxes.max() - boxes.min()), 0.0) + 1
    shifted = boxes + (np.asarray(class_ids, dtype=np.float32) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_keep)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """Boxes ``cx cy w h`` (YOLO's rows) -> ``x1 y1 x2 y2``."""
    xywh = np.asarray(xywh, dtype=np.float32)
    half = xywh[:, 2:4] / 2
    return np.concatenate((xywh[:, :2] - half, xywh[:, :2] + half), 1)
