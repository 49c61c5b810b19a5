"""The one detector interface: ``Detector.detect(image) -> Detections``, and the checks every detector shares.

Every detector (:mod:`~lrcfuse_model.detection.detectors` picks one for a weight file) takes a uint8 gray or RGB image
of any size and returns boxes in that image's pixels; :func:`check_image` and :func:`class_filter_ids` are the input
and class-filter checks they all apply, with the same messages.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..images.preprocess import InputError

__all__ = ["Detections", "Detector", "check_image", "class_filter_ids"]


@dataclass
class Detections:
    """Detections on one image: boxes ``x1 y1 x2 y2`` in the input image's pixels, best score first."""

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64
    names: list[str]  # every class name of the detector, by id

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, names: Sequence[str]) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), list(names))

    def class_names(self) -> list[str]:
        """The class name of each detection."""
        return [self.names[int(c)] for c in self.class_ids]


class Detector(abc.ABC):
    """An object detector: ``detect(image)`` on uint8 ``H x W`` (gray) or ``H x W x 3`` (RGB), any size."""

    name: str
    names: list[str]

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> Detections:
        """Detections on ``image``, boxes in its pixels."""


def check_image(image: np.ndarray) -> np.ndarray:
    """uint8 gray or RGB -> contiguous uint8 ``H x W x 3`` RGB; anything else is an :class:`InputError`."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"detector input: expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"detector input: expected H x W (gray) or H x W x 3 (RGB), got shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise InputError(f"detector input: empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def class_filter_ids(classes: Sequence[str | int] | None, names: Sequence[str], detector: str) -> list[int] | None:
    """A class filter given as names and/or ids -> sorted ids; an unknown name or id is an error."""
    if classes is None:
        return None
    ids: set[int] = set()
    for c in classes:
        if isinstance(c, (int, np.integer)) or (isinstance(c, str) and c.strip().isdigit()):
            i = int(c)
            if not 0 <= i < len(names):
                raise ValueError(
                    f"class id {i} is out of range for {detector} ({len(names)} classes: 0..{len(names) - 1})"
                )
            ids.add(i)
        elif isinstance(c, str) and c.strip() in names:
            ids.add(list(names).index(c.strip()))
        else:
            raise ValueError(f"class {c!r} is not a class of {detector}; its classes are: {', '.join(names)}")
    if not ids:
        raise ValueError(f"empty class filter for {detector} (give class names or ids, or None for all)")
    return sorted(ids)
