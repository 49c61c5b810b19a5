"""What the inference tests share (on pytest's pythonpath): a small LRCFuse configuration and random frames."""

from __future__ import annotations

import numpy as np
import torch

from lrcfuse_model import LRCFuse

# Small, but with 16 code channels so that the exported graph has the split 1-output convs
# (export.split_single_output_convs applies to convs with at least 16 input channels).
SMALL = {"code_channels": 8, "feature_channels": 16, "decoder_channels": [8, 8], "llrr_blocks": 2, "cfpm_stages": 2}

RNG = np.random.default_rng(0)


def frames(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return RNG.random((h, w), dtype=np.float32), RNG.random((h, w), dtype=np.float32)


def trained_like(model: LRCFuse) -> LRCFuse:
    """Thresholds of both signs, as in trained weights (some learned thresholds end up negative)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "theta" in name:
                p.copy_(torch.linspace(-0.05, 0.08, p.numel()).reshape(p.shape))
    return model.eval()
