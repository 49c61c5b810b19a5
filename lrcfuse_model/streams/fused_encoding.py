"""The encoding of a fused image message: chosen per stream, never per frame.

A colour camera's stream gets ``bgr8`` on every fused frame, a mono camera's ``mono8``: the choice
follows the visible image as its message decoded (``H x W x 3`` for bgr8, rgb8, Bayer, YUV ... ;
``H x W`` for mono8), not the pixels. The preprocessing fuses an RGB frame whose three channels are
equal as gray (its chroma is zero), so deciding from the fused array's shape made a bgr8 camera's
``fused/image`` flicker to mono8 on such frames (a grey scene, a test pattern); a gray result for a
colour stream goes out as bgr8 with three equal channels, exactly what its zero chroma gives.
Used by the node and by ``lrcfuse fuse-bag``.
"""

from __future__ import annotations

import numpy as np


def fused_encoding(visible: np.ndarray, colour: bool = True) -> str:
    """``bgr8`` when ``visible`` (the decoded visible image) has colour channels and ``colour`` is on, else mono8."""
    return "bgr8" if colour and visible.ndim == 3 else "mono8"
