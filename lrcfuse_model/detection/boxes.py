"""Box geometry of the YOLO detectors: letterboxing, boxes back to image pixels, IoU and non-maximum suppression.

As YOLOv5's inference does it (torchvision is not needed): :func:`letterbox` keeps the aspect ratio and pads with
gray to a multiple of the stride, :func:`scale_boxes` maps boxes back, :func:`nms` / :func:`batched_nms` keep the
best boxes (within each class).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["LETTERBOX_FILL", "batched_nms", "box_iou", "letterbox", "nms", "scale_boxes", "xywh_to_xyxy"]

LETTERBOX_FILL = 114  # YOLOv5's gray padding value


def letterbox(
    image: np.ndarray, size: int = 640, stride: int = 32, fill: int = LETTERBOX_FILL
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize ``image`` (``H x W x 3``) so its long side is ``size``, then pad each side to a multiple of ``stride``.

    As YOLOv5's inference: the aspect ratio is kept, the padding is split between the two sides and filled with
    gray ``fill``. Returns the padded image, the scale ``ratio`` and the ``(left, top)`` padding in pixels;
    :func:`scale_boxes` maps boxes back.
    """
    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    new_w, new_h = int(round(w * ratio)), int(round(h * ratio))
    pad_w, pad_h = (-new_w) % stride, (-new_h) % stride
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


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` (N x 4, x1 y1 x2 y2) with every box of ``b`` (M x 4): N x M."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(2)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, max_keep: int | None = None) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    A box is dropped when its IoU with a better-scoring kept box is above ``iou_threshold``. ``max_keep`` stops
    after that many boxes (the same result as suppressing everything and truncating, but cheaper).
    """
    order = torch.argsort(scores, descending=True, stable=True)
    keep: list[int] = []
    limit = len(order) if max_keep is None else max_keep
    while order.numel() and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        if order.numel() == 1:
            break
        rest = order[1:]
        overlap = box_iou(boxes[best : best + 1], boxes[rest])[0]
        order = rest[overlap <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    class_ids: torch.Tensor,
    iou_threshold: float,
    max_keep: int | None = None,
) -> torch.Tensor:
    """:func:`nms` within each class only (boxes of different classes never suppress each other)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # Shifting each class to its own far-away region makes cross-class IoU zero: one NMS pass does all classes.
    span = (boxes.max() - boxes.min()).clamp(min=0) + 1
    shifted = boxes + (class_ids.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_keep)


def xywh_to_xyxy(xywh: torch.Tensor) -> torch.Tensor:
    """Boxes ``cx cy w h`` (YOLO's rows) -> ``x1 y1 x2 y2``."""
    half = xywh[:, 2:4] / 2
    return torch.cat((xywh[:, :2] - half, xywh[:, :2] + half), 1)
