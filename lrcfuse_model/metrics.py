"""Fusion quality metrics on 8-bit grayscale images (one function per metric).

This module starts with the two no-reference statistics the model card reports; the full suite
(SF, AG, MI, SCD, VIF, Qabf, Nabf, SSIM) joins it with the evaluation work.
"""

from __future__ import annotations

import numpy as np


def _as_gray_u8(img: np.ndarray, name: str = "image") -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D 8-bit grayscale array, got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {img.dtype}")
    return img


def entropy(img: np.ndarray) -> float:
    """EN: Shannon entropy of the gray-level histogram, in bits.

    ``EN = -sum_{l=0}^{255} p_l log2 p_l`` with ``p_l`` the fraction of pixels at level ``l``
    (Roberts, van Aardt, Ahmed, J. Appl. Remote Sens. 2008). Higher means more information.
    """
    img = _as_gray_u8(img)
    p = np.bincount(img.ravel(), minlength=256).astype(np.float64) / img.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def standard_deviation(img: np.ndarray) -> float:
    """SD: ``sqrt(mean((F - mean(F))^2))`` over all pixels (1/N, as the MMIF/CDDFuse evaluator).

    Higher means more contrast. LRRNet's tables omit the 1/N (their SD is not comparable).
    """
    img = _as_gray_u8(img).astype(np.float64)
    return float(img.std())
