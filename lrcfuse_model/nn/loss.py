"""The five-term LRCFuse loss (SPEC §2; LRCFuse §3.3, LRRNet §4.2).

``L = g1*L_pixel + g2*L_shallow + L_middle + g4*L_deep + g5*L_sobel`` with

* ``L_pixel   = ||I_f - I_vi||^2`` (the paper), or ``||I_f - max(I_ir, I_vi)||^2`` with
  ``loss.pixel_target: max`` (the intensity target of RefineFuse / SeAFusion, which keeps hot
  targets bright: with the visible target and a polarity-blind Sobel term, short trainings
  drew warm people dark)
* ``L_shallow = ||Phi1(I_f) - Phi1(I_vi)||^2``
* ``L_middle  = sum_{k=2,3} beta_k ||Phik(I_f) - (w_ir Phik(I_ir) + w_vi Phik(I_vi))||^2``
* ``L_deep    = ||Gram(Phi4(I_f)) - Gram(Phi4(I_ir))||^2``
* ``L_sobel   = || |grad I_f| - target ||^2`` with ``|grad| = |Gx| + |Gy|`` (Sobel) and target
  ``|grad I_ir|`` (the best reading of LRCFuse's text) or ``max(|grad I_ir|, |grad I_vi|)``
  (RefineFuse), chosen by ``loss.sobel_target``.

Every squared Frobenius norm is taken as a mean over elements (as the reference LRRNet code
does with MSE), so the weights do not depend on the patch or batch size; the Gram matrix of
``C x H x W`` features is ``F F^T / (H W)``. With ``feature_net: none`` the three perceptual
terms are zero and reported as such (an explicit ablation, never a silent fallback).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .feature_nets import FeatureNetwork, build_feature_net

TERMS = ("pixel", "shallow", "middle", "deep", "sobel")

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(img: torch.Tensor) -> torch.Tensor:
    """|Gx| + |Gy| of N x 1 x H x W images (replicate borders, so flat borders have no edge)."""
    kernel = torch.stack([_SOBEL_X, _SOBEL_X.t()]).unsqueeze(1).to(img)
    g = F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), kernel)
    return g.abs().sum(1, keepdim=True)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (H W) per sample: the mean over positions of channel products.

    No mean removal ("a covariance matrix with no whitening", LRRNet). Normalising by the number
    of positions only (not also by C) keeps the term independent of patch size while leaving it
    large enough for gamma4 in the paper's range (700) with the YOLOv5n feature network.
    """
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


class FusionLoss(nn.Module):
    """The weighted sum of the five terms; ``forward`` returns the total and each raw term."""

    def __init__(self, cfg: Mapping[str, Any], feature_net: FeatureNetwork | None | str = "build") -> None:
        super().__init__()
        self.cfg = dict(cfg)
        if self.cfg.get("pixel_target", "vi") not in ("vi", "max"):
            raise ValueError(f"loss.pixel_target must be 'vi' or 'max', got {self.cfg['pixel_target']!r}")
        if self.cfg["sobel_target"] not in ("ir", "max"):
            raise ValueError(f"loss.sobel_target must be 'ir' or 'max', got {self.cfg['sobel_target']!r}")
        if len(self.cfg["middle_betas"]) != 2:
            raise ValueError(f"loss.middle_betas holds beta2 and beta3, got {self.cfg['middle_betas']}")
        if feature_net == "build":
            feature_net = build_feature_net(
                self.cfg["feature_net"], self.cfg.get("feature_weights", ""), self.cfg.get("feature_layers", [])
            )
        self.features = feature_net

    def forward(
        self, fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.cfg
        pixel_target = torch.maximum(ir, vi) if c.get("pixel_target", "vi") == "max" else vi
        terms: dict[str, torch.Tensor] = {"pixel": F.mse_loss(fused, pixel_target)}
        grad_f = sobel_magnitude(fused)
        target = sobel_magnitude(ir)
        if c["sobel_target"] == "max":
            target = torch.maximum(target, sobel_magnitude(vi))
        terms["sobel"] = F.mse_loss(grad_f, target)
        if self.features is not None:
            with torch.no_grad():
                phi_ir = self.features(ir)
                phi_vi = self.features(vi)
            phi_f = self.features(fused)
            terms["shallow"] = F.mse_loss(phi_f[0], phi_vi[0])
            terms["middle"] = sum(
                beta * F.mse_loss(phi_f[k], c["w_ir"] * phi_ir[k] + c["w_vi"] * phi_vi[k])
                for beta, k in zip(c["middle_betas"], (1, 2))
            )
            terms["deep"] = F.mse_loss(gram(phi_f[3]), gram(phi_ir[3]))
        else:
            zero = fused.new_zeros(())
            terms.update(shallow=zero, middle=zero, deep=zero)
        total = (
            c["pixel"] * terms["pixel"]
            + c["shallow"] * terms["shallow"]
            + terms["middle"]
            + c["deep"] * terms["deep"]
            + c["sobel"] * terms["sobel"]
        )
        return total, {k: terms[k] for k in TERMS}
