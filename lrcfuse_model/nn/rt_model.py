"""LRCFuse-RT: the LRCFuse blocks on a reduced-resolution code path, element-wise work only at full size.

The default LRCFuse runs every convolution at full resolution over 64..128-channel codes: 58 G MACs per
640 x 512 frame, seconds on a CPU. LRCFuse-RT keeps the same blocks (LLRR stacks, low-rank / sparse
fusion, CFPM, from :mod:`lrcfuse_model.nn.model`) but runs them on both images average-pooled by
``scale`` (1/64 of the pixels by default), and lets them predict how to mix the sources in each region
instead of the pixels themselves: four coefficient maps. At full resolution only element-wise
operations remain::

    x, y     = avgpool_s(vi), avgpool_s(ir)                 # the code path's inputs
    A, B, C, D = head(LRCFuse blocks(x, y))                 # 4 maps at 1/s
    fused    = up(A) * max(ir, vi) + up(B) * ir + up(C) * vi + up(D)    # up: bilinear to the frame size

Why this form (choices measured on the validation split, see ``docs/training.md``):

* Bright things stay bright: the basis holds ``max(ir, vi)``, the intensity target of the loss, so a hot
  pedestrian keeps the infrared's level (no haze, no dimmed targets), and the head starts at ``A = 1``
  (the pixel max) instead of at noise.
* Detail comes from local gains: ``B`` and ``C`` above or below zero add or subtract each source around
  its regional level, which raises the contrast of whichever source carries texture there (the target
  of the gradient loss) while ``A`` and ``D`` hold the level. Pixel-exact, with no convolution at full size.
* Everything that learns runs at 1/s: with ``scale = 8`` the code path sees 80 x 64 pixels for a
  640 x 512 frame, 0.05 G MACs in all; the full-resolution part is one resize and a few element-wise
  passes. A 1/4 code path scored lower on the validation split (lower MI and SCD: its finer
  coefficient maps copy more texture into flat regions) and ran 2x slower.
* Candidates that were tried and not kept: a full-resolution detail convolution (3x slower), and a
  fifth map weighting the stronger source's high-pass (sharper, but lower MI than the pixel average).
* Sizes are in :class:`LRCFuseRTConfig`; the full-resolution path has no weights.

The network output is not clamped (as LRCFuse's): :func:`lrcfuse_model.images.preprocess.finish` clamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .model import CFPM, LLRRStack, LowRankSparseFusion, LRCFuseConfig, SizesConfig, conv

ARCHITECTURE = "lrcfuse-rt"

# Coefficients of max(ir, vi), ir, vi and 1 at the start of training: the pixel max, a fusion that is
# already reasonable, rather than noise.
_HEAD_INIT = (1.0, 0.0, 0.0, 0.0)


@dataclass
class LRCFuseRTConfig(SizesConfig):
    """Sizes of LRCFuse-RT. The LRCFuse blocks run on images average-pooled by ``scale``."""

    section = "rt_model"

    scale: int = 8
    code_channels: int = 8
    llrr_blocks: int = 3
    feature_channels: int = 8
    cfpm_stages: int = 2
    head_channels: int = 8
    kernel_size: int = 3
    threshold_init: float = 0.01

    def validate(self) -> None:
        if self.scale < 1:
            raise ValueError(f"rt_model.scale must be >= 1, got {self.scale}")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"rt_model.kernel_size must be odd (same-size convolutions), got {self.kernel_size}")
        for name in ("code_channels", "llrr_blocks", "feature_channels", "cfpm_stages", "head_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"rt_model.{name} must be >= 1, got {getattr(self, name)}")

    def blocks_config(self) -> LRCFuseConfig:
        """The LRCFuse block sizes of the reduced-resolution code path."""
        return LRCFuseConfig(
            code_channels=self.code_channels,
            llrr_blocks=self.llrr_blocks,
            kernel_size=self.kernel_size,
            feature_channels=self.feature_channels,
            cfpm_stages=self.cfpm_stages,
            threshold_init=self.threshold_init,
        )


class LRCFuseRT(nn.Module):
    """LRCFuse-RT: ``forward(ir, vi) -> fused``, each N x 1 x H x W in [0, 1], any H and W."""

    architecture = ARCHITECTURE
    # CPU threads its ONNX export asks ONNX Runtime for (lrcfuse.cpu_threads): its operators are too
    # small to share between cores; on 2 cores, 1 thread ran a 640 x 512 frame in half the time of 2.
    cpu_threads = 1

    def __init__(self, config: LRCFuseRTConfig | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = config = LRCFuseRTConfig.build(config, overrides)
        blocks = config.blocks_config()
        self.llrr_vi = LLRRStack(blocks)
        self.llrr_ir = LLRRStack(blocks)
        self.fusion = LowRankSparseFusion(blocks)
        self.cfpm = CFPM(blocks)
        # The head also sees the pooled images themselves: where the sources differ in level matters.
        self.head_hidden = conv(config.feature_channels + 2, config.head_channels, config.kernel_size)
        self.head_out = conv(config.head_channels, len(_HEAD_INIT), config.kernel_size)
        with torch.no_grad():
            self.head_out.weight.mul_(0.1)
            self.head_out.bias.copy_(torch.tensor(_HEAD_INIT))

    def pool(self, img: torch.Tensor) -> torch.Tensor:
        """Average over ``scale x scale`` cells; a partial cell at the bottom or right repeats the edge.

        (Edge padding then a plain pooling, rather than ``ceil_mode``: the ONNX exporter keeps the
        frame size dynamic this way.)
        """
        s = self.config.scale
        h, w = img.shape[-2:]
        return F.avg_pool2d(F.pad(img, (0, (s - w % s) % s, 0, (s - h % s) % s), mode="replicate"), s)

    def coefficients(self, ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The four coefficient maps at 1/scale, and the pooled ``ir`` and ``vi`` they were computed from."""
        x, y = self.pool(vi), self.pool(ir)
        # One cell of edge padding around the code path, cropped from the maps again: its reflect-padded
        # convolutions need two cells a side, and a frame of a few pixels pools to one.
        xp, yp = F.pad(x, (1, 1, 1, 1), mode="replicate"), F.pad(y, (1, 1, 1, 1), mode="replicate")
        lx, sx = self.llrr_vi(xp)
        ly, sy = self.llrr_ir(yp)
        low, sparse = self.fusion(lx, sx, ly, sy)
        common = self.cfpm(xp, yp, lx, sx, ly, sy)
        hidden = torch.relu(self.head_hidden(torch.cat([(low + sparse + common) / 3.0, yp, xp], 1)))
        return self.head_out(hidden)[:, :, 1:-1, 1:-1], y, x

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        coef, _, _ = self.coefficients(ir, vi)
        a = F.interpolate(coef, size=ir.shape[-2:], mode="bilinear", align_corners=False)
        return a[:, 0:1] * torch.maximum(ir, vi) + a[:, 1:2] * ir + a[:, 2:3] * vi + a[:, 3:4]
