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
from ..nn.model import LRCFuse
from ..nn.rt_model import LRCFuseRT
from .deploy_graph import deploy_module
from .runtimes import CPU_RUNTIME_HINT, CPU_THREADS_HINT, SPIN_WAIT_HINT, _cuda_index, _import_tensorrt

ONNX_OPSET = 18
# Bumped when the exported graph or its metadata changes for the same weights, so that stale cache
# entries are not reused (5: the default model's export asks ONNX Runtime not to spin-wait; 6: and names
# OpenVINO as its fastest CPU runtime).
EXPORT_FORMAT = 6
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder of the path should be
        in_the_way = next((p for p in path.parents if p.exists() and not p.is_dir()), exc.filename)
        raise NotADirectoryError(f"{path}: {in_the_way} is a file, so {path.name} cannot be written there") from None
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


def export_onnx(model: LRCFuse | LRCFuseRT, path: str | Path, opset: int = ONNX_OPSET, deploy: bool = True) -> Path:
    """Write ``model`` as ONNX with dynamic H and W to ``path`` and check it with ``onnx.checker``.

    ``deploy``: export an :class:`LRCFuse` through its exact re-parametrisation
    (:func:`lrcfuse_model.inference.deploy_graph.deploy_module`, export format 4; since format 5 it also
    carries the ``lrcfuse.cpu_spin_wait=0`` hint that module asks for, since format 6
    ``lrcfuse.cpu_runtime=openvino``); ``False`` exports the modules as they
    are (the graph of export format 3, without hints, kept for benchmarks/default_speed.py).
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
            hints[CPU_THREADS_HINT] = str(model.cpu_threads)
        if getattr(traced, "cpu_spin_wait", True) is False:
            hints[SPIN_WAIT_HINT] = "0"
        if getattr(traced, "cpu_runtime", ""):
            hints[CPU_RUNTIME_HINT] = traced.cpu_runtime
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
