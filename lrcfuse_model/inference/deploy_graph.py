"""The export form of the default LRCFuse: an exact re-parametrisation that ONNX Runtime runs faster.

:func:`deploy_module` builds it from a trained :class:`~lrcfuse_model.nn.model.LRCFuse`;
:func:`lrcfuse_model.inference.export.export_onnx` traces it instead of the training module (export
format 4). The PyTorch model, its weights files and its outputs are untouched; this module only changes
how the same function is written down for a runtime (docs/deployment.md has the profile and ratio).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.model import LRCFuse, soft_threshold


class DeployLRCFuse(nn.Module):
    """An exact re-parametrisation of :class:`LRCFuse` for ONNX export (format 4): same function, fewer memory passes.

    Built from a trained LRCFuse by :func:`deploy_module` (``None`` where a condition there fails,
    and the network is then exported as it is). On ONNX Runtime's CPU provider the default network
    is memory-bound outside its 64/32-channel convolutions: the LLRR convolutions have one input
    or one output channel, so most of a frame went into element-wise passes over the 128-channel
    codes (a Mul by lambda, an Add and five threshold ops per LISTA step, with per-channel
    broadcasts), channel Slices, Concats and reflect Pads. Here:

    * The codes are kept in scaled coordinates ``z_k = s_k * u_k``, ``s_k = |theta| * |lambda|^k``
      per channel, and split into up to four pieces: low-rank / sparse half x sign of theta. The
      soft threshold then has the scalar bound ``tau_k = |lambda|^-k`` and is one Clip and one Sub
      (``u = w - clip(w, -tau, tau)``; where theta < 0, today's ``relu(x - t) + min(x + t, 0)`` is
      ``x + clamp(x, t, -t)``: Clip and Add), the ``lambda * z`` Mul disappears
      (``w_k = C2'(r) + sign(lambda) * u_{k-1}``, an Add ONNX Runtime fuses into the convolution as
      its sum input), and every scale moves into the weights that read or write the codes.
    * C1 (code -> image, one output) is written as 1x1 convolutions of the pieces into the k*k tap
      images, then reflect Pad + a one-hot k x k convolution (as ``split_single_output_convs`` in
      :mod:`lrcfuse_model.inference.export` does): the 128-channel code is neither padded nor
      unfolded. CFPM's ``d_l(L) + d_s(S)`` likewise.
    * LowRankSparseFusion: ``lx(L)`` is the sum of one convolution per piece (no Slices, no
      Concat), and ``low + sparse`` per modality is ``low_m(lx(L)) + sparse_m(sx(S))`` with ``low_m``,
      ``sparse_m`` the halves of ``low``/``sparse`` that read that modality (the same MACs).
    * CFPM: ``K_x^T(.) + K_y^T(.)`` is one 2 -> F convolution with ``-eta`` folded in.

    Every rewrite is exact in real arithmetic; float rounding moves outputs by ~1e-6.

    ``cpu_spin_wait = False``: the export asks ONNX Runtime's CPU pool not to spin-wait between
    operators (``lrcfuse.cpu_spin_wait=0``, export format 5). Each operator here runs for
    milliseconds, so spinning saves no wake-up time worth having, while the spinning thread holds a
    core that a training job, the ROS callbacks or the other pool thread needs: 1.05-1.12x faster per
    frame than format 4 on this shared 2-core machine (docs/deployment.md); LRCFuse-RT's
    sub-millisecond operators keep the default.

    ``cpu_runtime = "openvino"``: the export names OpenVINO as the CPU runtime to prefer where it is
    installed (``lrcfuse.cpu_runtime``, export format 6; backend ``auto`` reads it). Its CPU plugin runs
    this graph's 128-channel convolutions 1.4-1.6x faster than ONNX Runtime's CPU provider, within
    1.5e-6 of its outputs (docs/deployment.md). LRCFuse-RT ran at 0.45x there and names none.
    """

    cpu_spin_wait = False
    cpu_runtime = "openvino"

    def __init__(self, model: LRCFuse) -> None:
        super().__init__()
        cfg = model.config
        k, n, f = cfg.kernel_size, cfg.code_channels, cfg.feature_channels
        self.pad, self.blocks = k // 2, cfg.llrr_blocks
        d = torch.float64
        select = torch.zeros(1, k * k, k, k)
        for tap in range(k * k):
            select[0, tap, tap // k, tap % k] = 1.0
        self.register_buffer("tap_sum", select)
        fu, cf = model.fusion, model.cfpm
        self.meta: dict[str, dict[str, Any]] = {}
        stacks = (
            ("vi", model.llrr_vi, (fu.lx, fu.sx), (cf.d_lx, cf.d_sx), slice(0, f)),
            ("ir", model.llrr_ir, (fu.ly, fu.sy), (cf.d_ly, cf.d_sy), slice(f, None)),
        )
        as_taps = lambda w: w[0].permute(1, 2, 0).reshape(k * k, -1, 1, 1)  # noqa: E731  tap = k*dy + dx
        for tag, stack, encoders, dictionaries, half in stacks:
            t = stack.theta.detach().to(d).flatten()
            lam = float(stack.lam.detach().to(d))
            scales = [t.abs() * abs(lam) ** i for i in range(self.blocks + 1)]
            pieces = [
                (part, neg, torch.tensor([c for c in range(part * n, (part + 1) * n) if bool(t[c] < 0) == neg]))
                for part in (0, 1)
                for neg in (False, True)
            ]
            pieces = [p for p in pieces if len(p[2])]
            self.meta[tag] = {
                "parts": [p[0] for p in pieces],
                "negative": [p[1] for p in pieces],
                "tau": [abs(lam) ** -i for i in range(self.blocks + 1)],
                "lam_sign": 1.0 if lam > 0 else -1.0,
            }
            w = lambda m: m.weight.detach().to(d)  # noqa: E731
            b = lambda m: m.bias.detach().to(d)  # noqa: E731
            for p, (part, _, idx) in enumerate(pieces):
                s0 = scales[0][idx]
                self._buf(f"{tag}{p}_w0", w(stack.c0)[idx] / s0.view(-1, 1, 1, 1), b(stack.c0)[idx] / s0)
                for i, (c1, c2) in enumerate(zip(stack.c1, stack.c2), start=1):
                    self._buf(f"{tag}{p}_t{i}", as_taps(w(c1) * scales[i - 1].view(1, -1, 1, 1))[:, idx])
                    si = scales[i][idx]
                    self._buf(f"{tag}{p}_c2w{i}", w(c2)[idx] / si.view(-1, 1, 1, 1), b(c2)[idx] / si)
                cols, last = idx - part * n, scales[-1][idx]
                first = p == min(q for q, piece in enumerate(pieces) if piece[0] == part)  # carries the bias
                ew = w(encoders[part])[:, cols] * last.view(1, -1, 1, 1)
                self._buf(f"{tag}{p}_ew", ew, b(encoders[part]) if first else None)
                self._buf(f"{tag}{p}_dt", as_taps(w(dictionaries[part])[:, cols] * last.view(1, -1, 1, 1)))
            for i, c1 in enumerate(stack.c1, start=1):
                self._buf(f"{tag}_c1b{i}", b(c1))
            gb = b(fu.low) + b(fu.sparse) if tag == "vi" else torch.zeros(f, dtype=d)
            self._buf(f"{tag}_gw0", w(fu.low)[:, half], gb)
            self._buf(f"{tag}_gw1", w(fu.sparse)[:, half])
            self._buf(f"{tag}_db", b(dictionaries[0]) + b(dictionaries[1]))
        self.cfpm_init, self.k_x, self.k_y = cf.init, cf.k_x, cf.k_y
        self.register_buffer("cfpm_theta", cf.theta.detach().clone())
        for i, (kxt, kyt) in enumerate(zip(cf.k_xt, cf.k_yt)):
            eta = float(cf.eta.detach()[i])
            self._buf(f"kt_w{i}", torch.cat([w(kxt), w(kyt)], 1) * -eta, (b(kxt) + b(kyt)) * -eta)
        self.decoder = model.decoder

    def _buf(self, name: str, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.register_buffer(name, weight.to(torch.float32).contiguous())
        if bias is not None:
            self.register_buffer(name + "_b", bias.to(torch.float32).contiguous())

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        return F.pad(x, (p, p, p, p), mode="reflect")

    def _conv(self, x: torch.Tensor, name: str, bias: bool = True, pad: bool = True) -> torch.Tensor:
        b = getattr(self, name + "_b") if bias and hasattr(self, name + "_b") else None
        return F.conv2d(self._padded(x) if pad else x, getattr(self, name), b)

    def _image(self, tag: str, us: list[torch.Tensor], taps: str, bias: str) -> torch.Tensor:
        """A one-output k x k conv of the code (C1, or d_l + d_s): 1x1 tap images, reflect Pad, one-hot sum."""
        acc = None
        for p, u in enumerate(us):
            t = self._conv(u, f"{tag}{p}_{taps}", pad=False)
            acc = t if acc is None else t + acc
        return F.conv2d(self._padded(acc), self.tap_sum, getattr(self, bias))

    def _codes(self, tag: str, x: torch.Tensor) -> list[torch.Tensor]:
        meta = self.meta[tag]

        def threshold(w: torch.Tensor, negative: bool, tau: float) -> torch.Tensor:
            clipped = torch.clamp(w, -tau, tau)
            return w + clipped if negative else w - clipped

        xp = self._padded(x)
        us = [
            threshold(
                F.conv2d(xp, getattr(self, f"{tag}{p}_w0"), getattr(self, f"{tag}{p}_w0_b")),
                neg,
                meta["tau"][0],
            )
            for p, neg in enumerate(meta["negative"])
        ]
        for i in range(1, self.blocks + 1):
            r = x - self._image(tag, us, f"t{i}", f"{tag}_c1b{i}")
            rp = self._padded(r)
            new = []
            for p, (u, neg) in enumerate(zip(us, meta["negative"])):
                c = F.conv2d(rp, getattr(self, f"{tag}{p}_c2w{i}"), getattr(self, f"{tag}{p}_c2w{i}_b"))
                new.append(threshold(c + u if meta["lam_sign"] > 0 else c - u, neg, meta["tau"][i]))
            us = new
        return us

    def _features(self, tag: str, us: list[torch.Tensor]) -> torch.Tensor:
        """``low + sparse``'s share from one modality: ``low_m(lx(L)) + sparse_m(sx(S))``."""
        parts = self.meta[tag]["parts"]
        out = None
        for part in (0, 1):
            acc = None
            for p, u in enumerate(us):
                if parts[p] == part:
                    e = self._conv(u, f"{tag}{p}_ew")
                    acc = e if acc is None else e + acc
            g = self._conv(acc, f"{tag}_gw{part}")
            out = g if out is None else g + out
        return out

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        u_vi, u_ir = self._codes("vi", vi), self._codes("ir", ir)
        features = self._features("vi", u_vi) + self._features("ir", u_ir)
        r_x = vi - self._image("vi", u_vi, "dt", "vi_db")
        r_y = ir - self._image("ir", u_ir, "dt", "ir_db")
        c = soft_threshold(self.cfpm_init(torch.cat([r_x, r_y], 1)), self.cfpm_theta[0])
        for i in range(len(self.k_x)):
            res = torch.cat([self.k_x[i](c) - r_x, self.k_y[i](c) - r_y], 1)
            c = soft_threshold(c + self._conv(res, f"kt_w{i}"), self.cfpm_theta[i])
        return self.decoder((features + c) / 3.0)


def deploy_module(model: LRCFuse) -> DeployLRCFuse | None:
    """The export form of ``model`` (:class:`DeployLRCFuse`), or ``None`` where it does not apply.

    It needs the default structure (``cfpm_init='projection'``, one input channel) and nonzero
    thresholds and lambdas (the codes are scaled by them); other networks export as they are.
    """
    cfg = model.config
    if type(model) is not LRCFuse or cfg.cfpm_init != "projection" or cfg.in_channels != 1:
        return None
    for stack in (model.llrr_vi, model.llrr_ir):
        if not bool((stack.theta != 0).all()) or float(stack.lam.detach()) == 0.0:
            return None
    if any(m.padding_mode != "reflect" for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        return None
    return DeployLRCFuse(model).eval()


