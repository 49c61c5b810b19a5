"""The five-term LRCFuse loss (SPEC §2; LRCFuse §3.3, LRRNet §4.2).

``L = g1*L_pixel + g2*L_shallow + L_middle + g4*L_deep + g5*L_sobel + g6*L_hot`` with

* ``L_pixel   = ||I_f - I_vi||^2`` (the paper), or ``||I_f - max(I_ir, I_vi)||^2`` with
  ``loss.pixel_target: max`` (the intensity target of RefineFuse / SeAFusion, which keeps hot
  targets bright: with the visible target and a polarity-blind Sobel term, short trainings
  drew warm people dark)
* ``L_shallow = ||Phi1(I_f) - Phi1(I_vi)||^2``
* ``L_middle  = sum_{k=2,3} beta_k ||Phik(I_f) - (w_ir Phik(I_ir) + w_vi Phik(I_vi))||^2``
* ``L_deep    = ||Gram(Phi4(I_f)) - Gram(Phi4(I_ir))||^2``
* ``L_sobel   = || |grad I_f| - target ||^2`` with ``|grad| = |Gx| + |Gy|`` (Sobel) and target
  ``|grad I_ir|`` (the best reading of LRCFuse's text) or ``max(|grad I_ir|, |grad I_vi|)``
  (RefineFuse), chosen by ``loss.sobel_target``; or, with ``sobel_target: strongest``, the signed
  ``(Gx, Gy)`` of I_f held to those of the source whose gradient is larger at each pixel, per
  component. The magnitude targets are blind to polarity (a dark-on-bright edge may come out
  bright-on-dark); the signed target asks for the edge itself.
* ``L_hot     = mean over T of |I_f - max(I_ir, I_vi)|`` where T holds each patch's pixels at or above
  the ``loss.hot_quantile`` quantile of I_ir (0.98: the hot targets of issue 11's salience). Not in
  the paper. A pooled level term averages a person a few pixels wide with the background around it,
  so it lets small hot targets come out dimmer than the infrared shows them; this term holds those
  pixels, unpooled, to the brighter source. Weight ``loss.hot`` (0 = off, the default).

Two options serve the LRCFuse-RT recipe (``cfg/rt.yaml``), whose optimum is a salient fusion rather
than an average: ``pixel_pool: s`` compares fused and target after ``s x s`` average pooling (their
levels: the brightness of hot targets, no haze) and leaves the detail to the Sobel term, which the
pixel term would otherwise fight; ``pixel_norm`` / ``sobel_norm: l1`` use mean absolute errors, which
do not let a few large residuals (edges) dominate.

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

TERMS = ("pixel", "shallow", "middle", "deep", "sobel", "hot")

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_xy(img: torch.Tensor) -> torch.Tensor:
    """Signed Sobel ``(Gx, Gy)`` of N x 1 x H x W images: N x 2 x H x W (replicate borders)."""
    kernel = torch.stack([_SOBEL_X, _SOBEL_X.t()]).unsqueeze(1).to(img)
    return F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), kernel)


def sobel_magnitude(img: torch.Tensor) -> torch.Tensor:
    """|Gx| + |Gy| of N x 1 x H x W images (replicate borders, so flat borders have no edge)."""
    return sobel_xy(img).abs().sum(1, keepdim=True)


def strongest_gradient(ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """Per pixel and component, the signed Sobel gradient of whichever source's is larger in magnitude."""
    g_ir, g_vi = sobel_xy(ir), sobel_xy(vi)
    return torch.where(g_ir.abs() > g_vi.abs(), g_ir, g_vi)


_NORMS = {"l2": F.mse_loss, "l1": F.l1_loss}


def hot_mask(ir: torch.Tensor, quantile: float) -> torch.Tensor:
    """Per image of N x 1 x H x W, the pixels at or above its ``quantile`` of intensity (boolean, same shape)."""
    threshold = torch.quantile(ir.flatten(1), quantile, dim=1).view(-1, 1, 1, 1)
    return ir >= threshold


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
        if self.cfg["sobel_target"] not in ("ir", "max", "strongest"):
            raise ValueError(f"loss.sobel_target must be 'ir', 'max' or 'strongest', got {self.cfg['sobel_target']!r}")
        for key in ("pixel_norm", "sobel_norm"):
            if self.cfg.setdefault(key, "l2") not in _NORMS:
                raise ValueError(f"loss.{key} must be 'l2' or 'l1', got {self.cfg[key]!r}")
        if not 0.0 < float(self.cfg.setdefault("hot_quantile", 0.98)) < 1.0:
            raise ValueError(f"loss.hot_quantile must be between 0 and 1, got {self.cfg['hot_quantile']}")
        self.cfg.setdefault("hot", 0.0)
        if int(self.cfg.setdefault("pixel_pool", 1)) < 1:
            raise ValueError(f"loss.pixel_pool must be >= 1, got {self.cfg['pixel_pool']}")
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
        brightest = torch.maximum(ir, vi)  # the pixel target with pixel_target: max, and the hot term's
        pixel_target = brightest if c.get("pixel_target", "vi") == "max" else vi
        pool = int(c["pixel_pool"])
        levels = (lambda img: F.avg_pool2d(img, pool, ceil_mode=True)) if pool > 1 else (lambda img: img)
        terms: dict[str, torch.Tensor] = {"pixel": _NORMS[c["pixel_norm"]](levels(fused), levels(pixel_target))}
        if c["sobel_target"] == "strongest":
            grad_f, target = sobel_xy(fused), strongest_gradient(ir, vi)
        else:
            grad_f, target = sobel_magnitude(fused), sobel_magnitude(ir)
            if c["sobel_target"] == "max":
                target = torch.maximum(target, sobel_magnitude(vi))
        terms["sobel"] = _NORMS[c["sobel_norm"]](grad_f, target)
        if c["hot"]:
            hot = hot_mask(ir, float(c["hot_quantile"]))
            terms["hot"] = (fused - brightest).abs()[hot].mean()
        else:
            terms["hot"] = fused.new_zeros(())
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
            + c["hot"] * terms["hot"]
        )
        return total, {k: terms[k] for k in TERMS}
