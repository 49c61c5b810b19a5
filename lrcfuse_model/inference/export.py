"""Exporting LRCFuse: an ONNX model with dynamic height/width, and TensorRT engines built from it.

* :func:`export_onnx` writes the network as ONNX (opset 18, torch's dynamo exporter): inputs
  ``ir`` and ``vi`` and output ``fused``, all ``1 x 1 x H x W`` with H and W dynamic (any size of
  at least 2 x 2, odd or even), checked with ``onnx.checker``. Two exact graph rewrites make it
  faster on ONNX Runtime (:func:`split_single_output_convs`, :func:`transposed_convs_as_convs`).
  Its operators are Conv, Pad (mode ``reflect``), Relu, Clip, Add/Sub/Mul/Div, Slice and Concat,
  all of which TensorRT 10's ONNX parser imports (reflect Pad becomes an ISliceLayer with
  SampleMode.kREFLECT).
* :func:`cached_onnx` exports a weights file once into the cache folder, keyed by the weights'
  sha256, so that ONNX Runtime starts without exporting again.
* :func:`build_engine` builds a TensorRT engine (FP32 or FP16, one optimisation profile with
  min/opt/max shapes, a timing cache) with TensorRT's Python API; :func:`cached_engine` keeps
  engines in the cache folder keyed by GPU name, TensorRT version, ONNX hash, precision and
  profile, and builds only when no engine matches (first launch, logged).
``lrcfuse export`` (:mod:`lrcfuse_model.inference.export_check`) drives all of it from the ``export``
config section and checks the result against PyTorch. The cache folder is ``$LRCFUSE_CACHE``,
else ``~/.cache/lrcfuse``. This module runs no backend: the backends import it, not the reverse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import load_defaults, parse_size
from ..nn.checkpoint import load_model, resolve_weights
from ..nn.model import LRCFuse, soft_threshold
from ..nn.rt_model import LRCFuseRT
from .runtimes import _cuda_index, _import_tensorrt

ONNX_OPSET = 18
# Bumped when the exported graph changes for the same weights, so that stale cache entries are not reused.
EXPORT_FORMAT = 4
INPUT_NAMES = ("ir", "vi")
OUTPUT_NAME = "fused"

_LOG = logging.getLogger("lrcfuse")


def default_cache_dir() -> Path:
    """``$LRCFUSE_CACHE`` if set, else ``~/.cache/lrcfuse``."""
    return Path(os.environ.get("LRCFUSE_CACHE") or Path.home() / ".cache" / "lrcfuse")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# -- ONNX ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (per-pass INFO lines, optional-package notes) for one export."""
    names = ("torch.onnx", "onnxscript", "onnx_ir")
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # e.g. that the axis names of `vi` repeat those of `ir` (they are meant to).
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def split_single_output_convs(proto: Any, min_in_channels: int = 16) -> int:
    """Rewrite each reflect-padded 3x3 conv with one output channel as taps -> pad -> sum; returns how many.

    ``Conv(Pad(z))`` with ``z`` of C channels becomes ``Conv1x1(z) -> 9 tap images -> Pad ->
    Conv(one-hot 3x3)``: the same sums (reflect padding only moves pixels, so it commutes with
    the 1x1 channel mix), but the C-channel tensor is neither padded (a full copy) nor unfolded
    (im2col): ONNX Runtime runs the 1x1 conv as one GEMM over the unpadded tensor. The network
    has eight such convs with 128 input channels (LLRR's C1) and twelve with 32 or 64 (CFPM);
    outputs move by float rounding only (~1e-7). Edits ``proto`` in place.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    select = np.zeros((1, 9, 3, 3), np.float32)
    for tap in range(9):
        select[0, tap, tap // 3, tap % 3] = 1.0
    nodes, added, rewritten = [], [], 0
    for node in graph.node:
        pad = producer.get(node.input[0]) if node.op_type == "Conv" else None
        w = numpy_helper.to_array(weights[node.input[1]]) if pad is not None and node.input[1] in weights else None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (
            w is None
            or pad.op_type != "Pad"
            or w.shape[0] != 1
            or w.shape[1] < min_in_channels
            or w.shape[2:] != (3, 3)
            or any(v != 1 for v in attrs.get("strides", [1, 1]) + attrs.get("dilations", [1, 1]))
            or any(attrs.get("pads", [0, 0, 0, 0]))
            or attrs.get("group", 1) != 1
        ):
            nodes.append(node)
            continue
        base = node.name or node.output[0]
        taps = np.ascontiguousarray(w[0].transpose(1, 2, 0).reshape(9, w.shape[1], 1, 1))  # tap = 3*dy + dx
        added += [numpy_helper.from_array(taps, f"{base}.taps"), numpy_helper.from_array(select, f"{base}.select")]
        nodes += [
            helper.make_node("Conv", [pad.input[0], f"{base}.taps"], [f"{base}.tap_images"], name=f"{base}_taps"),
            helper.make_node(
                "Pad",
                [f"{base}.tap_images", *pad.input[1:]],
                [f"{base}.tap_padded"],
                name=f"{base}_pad",
                mode="reflect",
            ),
            helper.make_node(
                "Conv", [f"{base}.tap_padded", f"{base}.select", *node.input[2:]], list(node.output), name=base
            ),
        ]
        users[pad.output[0]] -= 1
        users[node.input[1]] -= 1
        rewritten += 1
    # A Pad that fed only rewritten convs (the exporter shares one Pad between convs of the same input) goes.
    dead = {n.output[0] for n in graph.node if n.op_type == "Pad" and users.get(n.output[0]) == 0}
    kept = [n for n in nodes if not (n.op_type == "Pad" and n.output[0] in dead)]
    del graph.node[:]
    graph.node.extend(kept)
    unused = [t for t in graph.initializer if users.get(t.name, 1) == 0]
    for t in unused:
        graph.initializer.remove(t)
    graph.initializer.extend(added)
    return rewritten


def transposed_convs_as_convs(proto: Any) -> int:
    """Rewrite each stride-1 ConvTranspose as the Conv it equals; returns how many.

    With stride 1 a transposed convolution is a plain convolution with the kernel flipped in both
    spatial axes, input and output channels swapped, and zero padding ``k - 1 - p``. ONNX
    Runtime's CPU ConvTranspose (GEMM + col2im) took 23% of the frame for the decoder's three
    layers; as Convs they run on the same path as the rest of the network. Outputs move by float
    rounding only. Edits ``proto`` in place.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    weights = {t.name: t for t in graph.initializer}
    rewritten = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "ConvTranspose" or node.input[1] not in weights:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w = numpy_helper.to_array(weights[node.input[1]])  # (C_in, C_out / group, kh, kw)
        kh, kw = w.shape[2:]
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if (
            any(v != 1 for v in attrs.get("strides", [1, 1]) + attrs.get("dilations", [1, 1]))
            or attrs.get("group", 1) != 1
            or any(attrs.get("output_padding", [0, 0]))
            or "output_shape" in attrs
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or pads[0] != pads[2]
            or pads[1] != pads[3]
            or pads[0] > kh - 1
            or pads[1] > kw - 1
        ):
            continue
        flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        name = f"{node.name or node.output[0]}.as_conv_weight"
        graph.initializer.append(numpy_helper.from_array(flipped, name))
        conv_pads = [kh - 1 - pads[0], kw - 1 - pads[1], kh - 1 - pads[2], kw - 1 - pads[3]]
        conv = helper.make_node(
            "Conv", [node.input[0], name, *node.input[2:]], list(node.output), name=node.name, pads=conv_pads
        )
        graph.node.remove(node)
        graph.node.insert(index, conv)
        rewritten += 1
    used = {name for n in graph.node for name in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
    return rewritten


class _DeployLRCFuse(torch.nn.Module):
    """An exact re-parametrisation of :class:`LRCFuse` for export: same function, fewer passes over memory.

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
      images, then reflect Pad + a one-hot k x k convolution (see :func:`split_single_output_convs`):
      the 128-channel code is neither padded nor unfolded. CFPM's ``d_l(L) + d_s(S)`` likewise.
    * LowRankSparseFusion: ``lx(L)`` is the sum of one convolution per piece (no Slices, no
      Concat), and ``low + sparse`` per modality is ``low_m(lx(L)) + sparse_m(sx(S))`` with ``low_m``,
      ``sparse_m`` the halves of ``low``/``sparse`` that read that modality (the same MACs).
    * CFPM: ``K_x^T(.) + K_y^T(.)`` is one 2 -> F convolution with ``-eta`` folded in.

    Every rewrite is exact in real arithmetic; float rounding moves outputs by ~1e-6.
    """

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
        return torch.nn.functional.pad(x, (p, p, p, p), mode="reflect")

    def _conv(self, x: torch.Tensor, name: str, bias: bool = True, pad: bool = True) -> torch.Tensor:
        b = getattr(self, name + "_b") if bias and hasattr(self, name + "_b") else None
        return torch.nn.functional.conv2d(self._padded(x) if pad else x, getattr(self, name), b)

    def _image(self, tag: str, us: list[torch.Tensor], taps: str, bias: str) -> torch.Tensor:
        """A one-output k x k conv of the code (C1, or d_l + d_s): 1x1 tap images, reflect Pad, one-hot sum."""
        acc = None
        for p, u in enumerate(us):
            t = self._conv(u, f"{tag}{p}_{taps}", pad=False)
            acc = t if acc is None else t + acc
        return torch.nn.functional.conv2d(self._padded(acc), self.tap_sum, getattr(self, bias))

    def _codes(self, tag: str, x: torch.Tensor) -> list[torch.Tensor]:
        meta = self.meta[tag]

        def threshold(w: torch.Tensor, negative: bool, tau: float) -> torch.Tensor:
            clipped = torch.clamp(w, -tau, tau)
            return w + clipped if negative else w - clipped

        xp = self._padded(x)
        us = [
            threshold(
                torch.nn.functional.conv2d(xp, getattr(self, f"{tag}{p}_w0"), getattr(self, f"{tag}{p}_w0_b")),
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
                c = torch.nn.functional.conv2d(
                    rp, getattr(self, f"{tag}{p}_c2w{i}"), getattr(self, f"{tag}{p}_c2w{i}_b")
                )
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


def deploy_module(model: LRCFuse) -> _DeployLRCFuse | None:
    """The export form of ``model`` (:class:`_DeployLRCFuse`), or ``None`` where it does not apply.

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
    return _DeployLRCFuse(model).eval()


def export_onnx(model: LRCFuse | LRCFuseRT, path: str | Path, opset: int = ONNX_OPSET, deploy: bool = True) -> Path:
    """Write ``model`` as ONNX with dynamic H and W to ``path`` and check it with ``onnx.checker``.

    ``deploy``: export an :class:`LRCFuse` through its exact re-parametrisation
    (:func:`deploy_module`); ``False`` exports the modules as they are (the graph of export format 3,
    kept for benchmarks/default_speed.py).
    """
    import onnx
    from torch.export import Dim

    path = Path(path)
    model = model.to("cpu").eval()
    traced = (deploy_module(model) if deploy and isinstance(model, LRCFuse) else None) or model
    height, width = Dim("height", min=2), Dim("width", min=2)
    # An odd, non-square example so that no size gets specialised into the graph.
    example = (torch.rand(1, 1, 37, 53), torch.rand(1, 1, 37, 53))

    def write(tmp: Path) -> None:
        with _quiet_exporter():
            program = torch.onnx.export(
                traced,
                example,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes={"ir": {2: height, 3: width}, "vi": {2: height, 3: width}},
                optimize=True,
                verbose=False,
            )
        proto = program.model_proto
        split_single_output_convs(proto)
        transposed_convs_as_convs(proto)
        proto.graph.doc_string = "LRCFuse infrared + visible fusion: ir, vi, fused are 1x1xHxW in [0,1]"
        # What the runtime should know about the network: ONNX Runtime reads the CPU thread count.
        hints = {"lrcfuse.architecture": getattr(model, "architecture", "lrcfuse")}
        if getattr(model, "cpu_threads", 0):
            hints["lrcfuse.cpu_threads"] = str(model.cpu_threads)
        onnx.helper.set_model_props(proto, hints)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save_model(proto, str(tmp))

    return _atomic_write(path, write)


def onnx_operators(path: str | Path) -> dict[str, int]:
    """Operator type -> count in an ONNX file."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def cached_onnx(
    weights: str | Path | None = None,
    cache_dir: str | Path | None = None,
    opset: int = ONNX_OPSET,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The ONNX export of a weights file or shipped model name (``None``: ``default``), exported on first use."""
    log = log or _LOG.info
    weights_path = resolve_weights(weights)
    key = hashlib.sha256(f"{file_sha256(weights_path)}|opset{opset}|format{EXPORT_FORMAT}".encode()).hexdigest()
    path = Path(cache_dir or default_cache_dir()) / "onnx" / f"lrcfuse-{key[:16]}.onnx"
    if path.is_file():
        return path
    log(f"exporting {weights_path} to ONNX (first use of these weights; cached as {path})")
    started = time.perf_counter()
    export_onnx(load_model(weights_path), path, opset)
    log(f"exported ONNX in {time.perf_counter() - started:.1f} s")
    return path


# -- TensorRT --------------------------------------------------------------------------------------


def profile_shapes(export_cfg: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{'min', 'opt', 'max'} -> (height, width)`` from an ``export`` config section's ``*_shape`` keys."""
    return {k: parse_size(export_cfg[f"{k}_shape"]) for k in ("min", "opt", "max")}


def _profile_defaults() -> dict[str, tuple[int, int]]:
    return profile_shapes(load_defaults()["export"])


def engine_cache_key(
    onnx_sha256: str,
    gpu_name: str,
    trt_version: str,
    fp16: bool,
    shapes: Mapping[str, tuple[int, int]],
) -> str:
    """sha256 over everything an engine depends on: GPU, TensorRT version, ONNX, precision, profile."""
    facts = {
        "gpu": gpu_name,
        "tensorrt": trt_version,
        "onnx_sha256": onnx_sha256,
        "precision": "fp16" if fp16 else "fp32",
        "profile": {k: list(shapes[k]) for k in ("min", "opt", "max")},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _check_profile(shapes: Mapping[str, tuple[int, int]]) -> None:
    lo, opt, hi = shapes["min"], shapes["opt"], shapes["max"]
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise ValueError(
            "engine profile must satisfy min <= opt <= max in both height and width, got "
            + ", ".join(f"{k} {v[1]}x{v[0]}" for k, v in shapes.items())
        )


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    *,
    fp16: bool = False,
    shapes: Mapping[str, tuple[int, int]] | None = None,
    timing_cache: str | Path | None = None,
    workspace_mib: int = 2048,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Build a TensorRT engine from an lrcfuse ONNX file (TensorRT 10 Python API).

    ``shapes``: ``{'min', 'opt', 'max'} -> (height, width)`` of the optimisation profile (both
    inputs share it). ``timing_cache``: a file read before and written after the build (layer
    timings reused by later builds on the same GPU). Raises with the parser's messages when the
    ONNX model does not import.
    """
    trt = _import_tensorrt()
    log = log or _LOG.info
    shapes = dict(shapes or _profile_defaults())
    _check_profile(shapes)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"{onnx_path}: TensorRT could not parse the ONNX model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name in INPUT_NAMES:
        profile.set_shape(name, *((1, 1, *shapes[k]) for k in ("min", "opt", "max")))
    config.add_optimization_profile(profile)
    cache_file = Path(timing_cache) if timing_cache else None
    cache_blob = cache_file.read_bytes() if cache_file and cache_file.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_blob), False)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    _atomic_write(Path(engine_path), lambda tmp: tmp.write_bytes(bytes(memoryview(serialized))))
    if cache_file:
        timings = config.get_timing_cache().serialize()
        _atomic_write(cache_file, lambda tmp: tmp.write_bytes(bytes(memoryview(timings))))
    log(f"built TensorRT engine {engine_path} in {time.perf_counter() - started:.0f} s")
    return Path(engine_path)


def cached_engine(
    onnx_path: str | Path,
    cache_dir: str | Path | None = None,
    *,
    fp16: bool = False,
    shapes: Mapping[str, tuple[int, int]] | None = None,
    device: str = "cuda:0",
    workspace_mib: int = 2048,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The engine for this ONNX file, GPU, TensorRT version, precision and profile; built if absent."""
    trt = _import_tensorrt()
    log = log or _LOG.info
    shapes = dict(shapes or _profile_defaults())
    gpu = torch.cuda.get_device_name(_cuda_index(device))
    key = engine_cache_key(file_sha256(onnx_path), gpu, trt.__version__, fp16, shapes)
    folder = Path(cache_dir or default_cache_dir()) / "tensorrt"
    engine = folder / f"lrcfuse-{key[:16]}.engine"
    if engine.is_file():
        log(f"TensorRT engine from cache: {engine}")
        return engine
    precision = "FP16" if fp16 else "FP32"
    log(
        f"building TensorRT engine for {gpu} ({precision}, profile "
        + ", ".join(f"{k} {v[1]}x{v[0]}" for k, v in shapes.items())
        + f"): first launch with this model/GPU/TensorRT {trt.__version__}, this takes a few minutes; "
        f"later launches load {engine}"
    )
    slug = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-")
    timing = folder / f"timing-{slug}-trt{trt.__version__}.cache"
    with torch.cuda.device(_cuda_index(device)):
        build_engine(
            onnx_path, engine, fp16=fp16, shapes=shapes, timing_cache=timing, workspace_mib=workspace_mib, log=log
        )
    facts = {"onnx": str(onnx_path), "gpu": gpu, "tensorrt": trt.__version__, "precision": precision.lower()}
    facts["profile"] = {k: f"{v[1]}x{v[0]}" for k, v in shapes.items()}
    engine.with_suffix(".json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
    return engine
