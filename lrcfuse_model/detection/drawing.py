"""Drawing detections: each box with its class name and score, in a fixed colour per class."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .interface import Detections, check_image

__all__ = ["class_color", "draw_detections", "label_font"]

_PALETTE = [
    (255, 56, 56), (72, 249, 10), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49),
    (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187), (44, 153, 168), (0, 194, 255),
    (52, 69, 147), (100, 115, 255), (0, 24, 236), (132, 56, 255), (82, 0, 133), (203, 56, 255),
]  # fmt: skip


def class_color(class_id: int) -> tuple[int, int, int]:
    """A fixed colour per class id."""
    return _PALETTE[int(class_id) % len(_PALETTE)]


def label_font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` pixels (one fixed bitmap size on old Pillow)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def draw_detections(image: np.ndarray, detections: Detections, line_width: int | None = None) -> np.ndarray:
    """An RGB uint8 copy of ``image`` (gray or RGB) with each box, its class name and score drawn on it."""
    canvas = Image.fromarray(check_image(image).copy())
    draw = ImageDraw.Draw(canvas)
    w, h = canvas.size
    width = line_width or max(1, round((w + h) / 600))
    font = label_font(max(10, round((w + h) / 90)))
    for box, score, cls in zip(detections.boxes, detections.scores, detections.class_ids):
        x1, y1, x2, y2 = (float(v) for v in box)
        color = class_color(int(cls))
        draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        name = detections.names[int(cls)] if 0 <= int(cls) < len(detections.names) else str(int(cls))
        label = f"{name} {float(score):.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tw, th = right - left, bottom - top + 2
        ty = y1 - th - 1 if y1 - th - 1 >= 0 else y1 + 1  # above the box unless that leaves the image
        tx = max(0.0, min(x1, w - tw - 4))  # and inside the image at the right edge
        draw.rectangle((tx, ty, tx + tw + 3, ty + th + 1), fill=color)
        bright = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] > 150
        draw.text((tx + 2 - left, ty - top), label, fill=(0, 0, 0) if bright else (255, 255, 255), font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()
