"""LRCFuse: learned low-rank representation (LLRR) + common-feature (CFPM) fusion network.

The network follows Liu et al., "LRCFuse", Sensors 2026 (SPEC §1), whose text lost most of its
symbols; the LLRR block is taken from its predecessor LRRNet (Li et al., TPAMI 2023, eq. 8).
Visible image X, infrared image Y, both 1 x H x W in [0, 1]. Every convolution is stride 1 with
"same" padding, so any image size (odd ones included) goes through without padding or cropping,
and ``forward`` has no data-dependent Python control flow (it traces and exports as is).

Choices where the paper is ambiguous, all configurable through :class:`LRCFuseConfig`:

* LLRR step: ``Z_t = h_theta(C2 * (X - C1 * Z_{t-1}) + lambda * Z_{t-1})``. SPEC writes the
  skip as ``+ Z_{t-1}``; LRRNet's derivation (eq. 7) scales it by a learnable lambda, which we keep
  (initialised to 1, so it starts as SPEC's form). Each of the T blocks has its own C1, C2
  (LISTA with untied weights); theta is learnable per channel and shared by the blocks of one
  modality, as in LRRNet.
* L / S and their fusion: Z (2K channels) splits into L (first K) and S (last K). Four convs map
  L_x, L_y, S_x, S_y to ``feature_channels``; low-rank pairs and sparse pairs are concatenated
  and two convs give L_f and S_f (LRRNet Fig. 3, with feature maps instead of 1-channel images
  because LRCFuse decodes with three deconvolutions afterwards).
* CFPM (LRCFuse Algorithm 2): the residuals R_x = X - D_lx*L_x - D_sx*S_x (and likewise for Y)
  use four learned 1-output convs as the dictionaries. C has ``feature_channels`` channels so it
  can be averaged with L_f and S_f. Each stage has its own K_x, K_y (C -> image) and their
  "transposes" K_x^T, K_y^T (image -> C) as separate learned convs, a learnable step eta and
  per-channel threshold: ``C <- h(C - eta * [K_x^T(K_x C - R_x) + K_y^T(K_y C - R_y)])``.
  C starts at a learned projection of the residuals (``cfpm_init='projection'``, default: with a
  zero start the first stage only sees ``-R``, which wastes a stage) or at zero.
* Output: ``(L_f + S_f + C) / 3`` then three 3x3 transposed convolutions (stride 1) with ReLU
  between them; the last gives one channel. The network output is not clamped (the loss sees the
  raw value); :func:`lrcfuse_model.inference.fuser` clamps to [0, 1] for images.

With the defaults the network has about 0.18 M parameters, as reported for LRCFuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn


class SizesConfig:
    """What every network's size dataclass shares: built from a config section, unknown keys refused."""

    section = "model"  # the config section it is read from (named in errors)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.section} config keys {unknown}; valid: {sorted(known)}")
        cfg = cls(**dict(values))
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def build(cls, config: Any = None, overrides: Mapping[str, Any] | None = None) -> Any:
        """A network's ``config`` argument (an instance, a mapping or ``None`` = the defaults) plus keyword
        overrides -> a validated instance."""
        if config is None:
            config = cls()
        elif isinstance(config, Mapping):
            config = cls.from_dict(config)
        if overrides:
            config = cls.from_dict({**config.to_dict(), **overrides})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming ``section.key`` for a value out of range."""


@dataclass
class LRCFuseConfig(SizesConfig):
    """Every size of the network. Defaults land at the paper's 0.18 M parameters."""

    in_channels: int = 1
    code_channels: int = 64
    llrr_blocks: int = 4
    kernel_size: int = 3
    feature_channels: int = 32
    cfpm_stages: int = 4
    cfpm_init: str = "projection"
    decoder_channels: list[int] = field(default_factory=lambda: [64, 32])
    threshold_init: float = 0.01

    def validate(self) -> None:
        if self.kernel_size % 2 != 1:
            raise ValueError(f"model.kernel_size must be odd (same-size convolutions), got {self.kernel_size}")
        if self.cfpm_init not in ("projection", "zero"):
            raise ValueError(f"model.cfpm_init must be 'projection' or 'zero', got {self.cfpm_init!r}")
        if len(self.decoder_channels) != 2:
            raise ValueError(
                "model.decoder_channels lists the widths of the first two of the three deconvolutions, "
                f"got {self.decoder_channels}"
            )
        for name in ("code_channels", "llrr_blocks", "feature_channels", "cfpm_stages"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")


def soft_threshold(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """h_theta(x) = sign(x) * max(|x| - theta, 0), theta broadcast per channel.

    Written as ``relu(x - t) + min(x + t, 0)``, which is ``relu(x - t) - relu(-x - t)`` bit for
    bit (IEEE negation is exact), also where a learned theta is negative: ops that every exporter
    and TensorRT handle well (no sign/abs), and five element-wise passes over the wide codes
    instead of six, since the network is memory-bound there.
    """
    return torch.relu(x - theta) + torch.clamp(x + theta, max=0.0)


def conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    """Stride-1 "same" convolution with reflect padding (no dark borders on real images)."""
    return nn.Conv2d(cin, cout, k, padding=k // 2, padding_mode="reflect")


class LLRRStack(nn.Module):
    """T unrolled LISTA steps (LLRR blocks) giving the low-rank L and sparse S codes of one image."""

    def __init__(self, cfg: LRCFuseConfig) -> None:
        super().__init__()
        k, c, z = cfg.kernel_size, cfg.in_channels, 2 * cfg.code_channels
        self.code_channels = cfg.code_channels
        self.c0 = conv(c, z, k)
        self.c1 = nn.ModuleList(conv(z, c, k) for _ in range(cfg.llrr_blocks))  # code -> image
        self.c2 = nn.ModuleList(conv(c, z, k) for _ in range(cfg.llrr_blocks))  # image -> code
        self.theta = nn.Parameter(torch.full((1, z, 1, 1), cfg.threshold_init))
        self.lam = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = soft_threshold(self.c0(x), self.theta)
        for c1, c2 in zip(self.c1, self.c2):
            z = soft_threshold(c2(x - c1(z)) + self.lam * z, self.theta)
        return z[:, : self.code_channels], z[:, self.code_channels :]


class LowRankSparseFusion(nn.Module):
    """Four convs on L_x, L_y, S_x, S_y, then concat + two convs give L_f and S_f."""

    def __init__(self, cfg: LRCFuseConfig) -> None:
        super().__init__()
        k, n, f = cfg.kernel_size, cfg.code_channels, cfg.feature_channels
        self.lx, self.ly, self.sx, self.sy = (conv(n, f, k) for _ in range(4))
        self.low = conv(2 * f, f, k)
        self.sparse = conv(2 * f, f, k)

    def forward(self, lx: torch.Tensor, sx: torch.Tensor, ly: torch.Tensor, sy: torch.Tensor):
        low = self.low(torch.cat([self.lx(lx), self.ly(ly)], 1))
        sparse = self.sparse(torch.cat([self.sx(sx), self.sy(sy)], 1))
        return low, sparse


class CFPM(nn.Module):
    """Common-feature preservation: unrolled convolutional sparse coding of the two residuals."""

    def __init__(self, cfg: LRCFuseConfig) -> None:
        super().__init__()
        k, c, n, f = cfg.kernel_size, cfg.in_channels, cfg.code_channels, cfg.feature_channels
        # Dictionaries that reconstruct each modality from its own L and S codes.
        self.d_lx, self.d_sx, self.d_ly, self.d_sy = (conv(n, c, k) for _ in range(4))
        self.init = conv(2 * c, f, k) if cfg.cfpm_init == "projection" else None
        self.k_x = nn.ModuleList(conv(f, c, k) for _ in range(cfg.cfpm_stages))
        self.k_y = nn.ModuleList(conv(f, c, k) for _ in range(cfg.cfpm_stages))
        self.k_xt = nn.ModuleList(conv(c, f, k) for _ in range(cfg.cfpm_stages))
        self.k_yt = nn.ModuleList(conv(c, f, k) for _ in range(cfg.cfpm_stages))
        self.eta = nn.Parameter(torch.full((cfg.cfpm_stages,), 0.5))
        self.theta = nn.Parameter(torch.full((cfg.cfpm_stages, 1, f, 1, 1), cfg.threshold_init))
        self.feature_channels = f

    def forward(self, x, y, lx, sx, ly, sy) -> torch.Tensor:
        r_x = x - self.d_lx(lx) - self.d_sx(sx)
        r_y = y - self.d_ly(ly) - self.d_sy(sy)
        if self.init is not None:
            c = soft_threshold(self.init(torch.cat([r_x, r_y], 1)), self.theta[0])
        else:
            c = torch.zeros_like(r_x[:, :1]).expand(-1, self.feature_channels, -1, -1)
        for i in range(len(self.k_x)):
            grad = self.k_xt[i](self.k_x[i](c) - r_x) + self.k_yt[i](self.k_y[i](c) - r_y)
            c = soft_threshold(c - self.eta[i] * grad, self.theta[i])
        return c


class Decoder(nn.Module):
    """Three stride-1 transposed convolutions from the averaged features to one channel."""

    def __init__(self, cfg: LRCFuseConfig) -> None:
        super().__init__()
        k = cfg.kernel_size
        widths = [cfg.feature_channels, *cfg.decoder_channels, cfg.in_channels]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.ConvTranspose2d(cin, cout, k, padding=k // 2))
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.layers(f)


class LRCFuse(nn.Module):
    """The LRCFuse network: ``forward(ir, vi) -> fused``, each N x 1 x H x W in [0, 1].

    ``LRCFuse()`` builds the default configuration (about 0.18 M parameters); pass an
    :class:`LRCFuseConfig` or keyword overrides (``LRCFuse(code_channels=16)``) for others.
    """

    def __init__(self, config: LRCFuseConfig | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = config = LRCFuseConfig.build(config, overrides)
        self.llrr_vi = LLRRStack(config)
        self.llrr_ir = LLRRStack(config)
        self.fusion = LowRankSparseFusion(config)
        self.cfpm = CFPM(config)
        self.decoder = Decoder(config)

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        lx, sx = self.llrr_vi(vi)
        ly, sy = self.llrr_ir(ir)
        low, sparse = self.fusion(lx, sx, ly, sy)
        common = self.cfpm(vi, ir, lx, sx, ly, sy)
        return self.decoder((low + sparse + common) / 3.0)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
