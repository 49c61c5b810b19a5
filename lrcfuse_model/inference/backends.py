"""Inference backends behind one interface: PyTorch, ONNX Runtime, OpenVINO and TensorRT.

A backend runs the network only: ``fuse(ir, vi_y)`` takes the float32 ``H x W`` arrays in [0, 1]
that :func:`lrcfuse_model.images.preprocess.prepare_pair` produces and returns the raw
(unclamped) float32 ``H x W`` network output. Reading images, normalisation, YCbCr and the uint8
output are done once for every backend by :mod:`lrcfuse_model.images.preprocess` (through
:class:`lrcfuse_model.inference.fuser.Fuser`); the network pads its own borders (reflect padding
inside each convolution), so no backend pads or crops.

``create_backend(name, weights, device)`` builds one:

* ``torch``: the PyTorch model (CPU or CUDA).
* ``onnxruntime``: the ONNX model exported from the weights (once, into the cache folder, keyed
  by the weights' hash), on the CPU provider, or the CUDA provider for ``device='cuda[:N]'``.
* ``openvino``: the same ONNX model on OpenVINO's CPU plugin (float32 kept: no bf16 on CPUs that
  offer it), where the ``openvino`` package is installed. The default LRCFuse runs 1.4-1.6x faster
  there than on ONNX Runtime's CPU provider with the same outputs; LRCFuse-RT runs slower (its
  operators are too small for OpenVINO's per-operator overhead).
* ``tensorrt``: a TensorRT engine built from that ONNX model on first use (minutes; logged) and
  loaded from the engine cache afterwards (see :mod:`lrcfuse_model.inference.export`). Needs an NVIDIA GPU,
  the ``tensorrt`` Python package and a CUDA build of PyTorch (used for device memory).
* ``auto``: TensorRT when CUDA and TensorRT are present; else, on the CPU, OpenVINO for a network
  whose export asks for it (``lrcfuse.cpu_runtime=openvino``: the default LRCFuse) when OpenVINO is
  installed; else ONNX Runtime, else PyTorch; the choice and the reason are logged.

``weights`` may also name an ``.onnx`` file (onnxruntime / tensorrt) or a serialized TensorRT
engine (``.engine`` / ``.plan``, tensorrt) to run that file as it is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..nn.model import LRCFuse
from .backend_base import Backend, check_io_names, cpu_threads, network_inputs
from .openvino_backend import OpenVinoBackend, prefers_openvino, require_cpu
from .runtimes import (
    CPU_THREADS_HINT,
    SPIN_WAIT_HINT,
    BackendUnavailable,
    _cuda_index,
    _import_onnxruntime,
    _import_openvino,
    onnxruntime_available,
    onnxruntime_providers,
    openvino_available,
    require_tensorrt,
    tensorrt_available,
)
from .tiling import TiledBackend, parse_memory, parse_tile, tiled

BACKEND_NAMES = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan")
ORT_DISABLED_OPTIMIZERS = ("NchwcTransformer",)
# ONNX Runtime's CPU memory arena: off. It grows in powers of two, so a tile's working memory took up to
# 37 % more (the node's 1080p peak: 2723 MiB with it, 1984 MiB without, max_memory 2GB), and it keeps the
# largest frame's buffers for the session. The price: the default model 5.6 % slower at 256x320 here,
# LRCFuse-RT 0.3-1.9 % (docs/deployment.md, issue 14). With the arena on, the tiling wrapper has the last
# run of a larger frame shrink it (shrink_after_next_run) before trimming the heap.
ORT_CPU_ARENA = False
ORT_ARENA_SHRINK = ("memory.enable_memory_arena_shrinkage", "cpu:0")

_LOG = logging.getLogger("lrcfuse")


Backend.register(TiledBackend)  # tiles through any backend, and is one itself


# -- PyTorch ---------------------------------------------------------------------------------------


class TorchBackend(Backend):
    """The PyTorch model, eager mode."""

    name = "torch"

    def __init__(self, model: LRCFuse, device: str = "cpu") -> None:
        self.device = str(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        ir_in, vi_in = network_inputs(ir, vi_y)
        out = self.model(torch.from_numpy(ir_in).to(self.device), torch.from_numpy(vi_in).to(self.device))
        return out[0, 0].float().cpu().numpy()


# -- ONNX Runtime ----------------------------------------------------------------------------------


class OnnxRuntimeBackend(Backend):
    """An exported ONNX model on ONNX Runtime: CPU provider, or CUDA provider for ``cuda[:N]``."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, device: str = "cpu", threads: int = 0) -> None:
        ort = _import_onnxruntime()
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"ONNX model {self.onnx_path} does not exist")
        self.device = str(device)
        providers = onnxruntime_providers(ort, self.device)
        self.threads = threads or os.cpu_count() or 1
        self.spin_wait = True  # ONNX Runtime's default: idle pool threads spin before they sleep
        self._ort, self._shrink_next = ort, False
        self.session = self._session(ort, providers)
        hints = self.session.get_modelmeta().custom_metadata_map
        wanted = cpu_threads(threads, hints.get(CPU_THREADS_HINT, "") if self.device == "cpu" else "")
        again, self.threads = wanted != self.threads, wanted
        # An export whose operators each run for milliseconds asks for no spin-waiting (the default
        # LRCFuse, inference/deploy_graph.py): spinning saves nothing there and takes a core from
        # whatever else runs on the machine.
        if self.device == "cpu" and hints.get(SPIN_WAIT_HINT) == "0":
            self.spin_wait = False
            again = again or self.threads > 1
        if again:
            self.session = self._session(ort, providers)
        check_io_names(
            self.onnx_path, [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        )
        self.providers = self.session.get_providers()

    def _session(self, ort: Any, providers: list[Any]) -> Any:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One frame at a time: the threads on each operator; no inter-op pool to compete with it.
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_cpu_mem_arena = self._arena = ORT_CPU_ARENA
        if not self.spin_wait:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # ORT's NCHWc layout pass converts every conv's 128-channel input/output between layouts,
        # because the reflect Pads and the element-wise ops between the convs stay in NCHW: on this
        # network the conversions cost more than the blocked convs gain (9% more CPU time measured).
        return ort.InferenceSession(
            str(self.onnx_path), options, providers=providers, disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS)
        )

    def shrink_after_next_run(self) -> None:
        """Have the next run give the CPU memory arena's unused regions back (ONNX Runtime's arena shrinkage)."""
        self._shrink_next = self._arena  # without an arena there is nothing to shrink (ORT refuses the option)

    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        ir_in, vi_in = network_inputs(ir, vi_y)
        options = None
        if self._shrink_next:
            options = self._ort.RunOptions()
            options.add_run_config_entry(*ORT_ARENA_SHRINK)
            self._shrink_next = False
        (out,) = self.session.run(["fused"], {"ir": ir_in, "vi": vi_in}, options)
        return np.asarray(out[0, 0], dtype=np.float32)


# -- TensorRT --------------------------------------------------------------------------------------


class TensorRTBackend(Backend):
    """A serialized TensorRT engine (built by :func:`lrcfuse_model.inference.export.build_engine`).

    Device memory and the CUDA stream come from PyTorch (a CUDA build), so no other CUDA binding
    is needed. The engine has one optimisation profile; frames outside its min..max shapes are
    an error naming the profile and how to rebuild it.
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, device: str = "cuda:0") -> None:
        trt = require_tensorrt()
        self.device = f"cuda:{_cuda_index(device if device != 'cpu' else 'cuda')}"
        self.engine_path = Path(engine_path)
        if not self.engine_path.is_file():
            raise FileNotFoundError(f"TensorRT engine {self.engine_path} does not exist")
        torch.cuda.set_device(self.device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise ValueError(
                f"{self.engine_path}: TensorRT could not load this engine (built by another TensorRT version "
                "or for another GPU?); delete it to rebuild"
            )
        self.context = self.engine.create_execution_context()
        self.profile_shapes = {
            name: tuple(tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(name, 0))
            for name in ("ir", "vi")
        }

    def _check_profile(self, shape: tuple[int, ...]) -> None:
        low, _, high = self.profile_shapes["ir"]
        if not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
            raise ValueError(
                f"frame {shape[3]}x{shape[2]} (width x height) is outside the TensorRT engine's profile "
                f"{low[3]}x{low[2]} .. {high[3]}x{high[2]}; rebuild it with lrcfuse export --format engine "
                "--min-shape/--max-shape"
            )

    @torch.inference_mode()
    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        ir_in, vi_in = network_inputs(ir, vi_y)
        self._check_profile(ir_in.shape)
        device = torch.device(self.device)
        tensors = {
            "ir": torch.from_numpy(ir_in).to(device),
            "vi": torch.from_numpy(vi_in).to(device),
            "fused": torch.empty(ir_in.shape, dtype=torch.float32, device=device),
        }
        for name in ("ir", "vi"):
            self.context.set_input_shape(name, tuple(ir_in.shape))
        for name, tensor in tensors.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        stream = torch.cuda.current_stream(device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(
                f"TensorRT failed to run {self.engine_path} on a {ir_in.shape[3]}x{ir_in.shape[2]} frame"
            )
        stream.synchronize()
        return tensors["fused"][0, 0].cpu().numpy()


# -- choosing and building a backend ---------------------------------------------------------------


def _weights_kind(weights: str | Path | None) -> str:
    """``'pytorch'`` (a weights file or the shipped weights), ``'onnx'`` or ``'engine'``."""
    if not weights:
        return "pytorch"
    suffix = Path(weights).suffix.lower()
    return "onnx" if suffix == ".onnx" else "engine" if suffix in ENGINE_SUFFIXES else "pytorch"


def _onnx_for(weights: str | Path | None, cache_dir: str | Path | None, log: Callable[[str], None]) -> Path:
    if _weights_kind(weights) == "onnx":
        return Path(weights)  # type: ignore[arg-type]
    from .export import cached_onnx  # on first use only: export needs onnx

    return cached_onnx(weights or None, cache_dir, log=log)


def _make(
    name: str,
    weights: str | Path | None,
    device: str,
    cache_dir: str | Path | None,
    fp16: bool,
    threads: int,
    log: Callable[[str], None],
) -> Backend:
    kind = _weights_kind(weights)
    if name == "torch":
        if kind != "pytorch":
            raise ValueError(f"backend 'torch' needs a PyTorch weights file (.pt), got {weights}")
        from ..nn.checkpoint import load_model

        if threads:
            torch.set_num_threads(threads)
        return TorchBackend(load_model(weights or None, device), device)
    if name in ("onnxruntime", "openvino") and kind == "engine":
        raise ValueError(f"backend {name!r} cannot run a TensorRT engine ({weights}); give .pt or .onnx")
    if name == "onnxruntime":
        _import_onnxruntime()  # fail before exporting when the runtime is missing
        return OnnxRuntimeBackend(_onnx_for(weights, cache_dir, log), device, threads)
    if name == "openvino":
        _import_openvino()  # as for onnxruntime: the runtime and the device before exporting anything
        require_cpu(device)
        return OpenVinoBackend(_onnx_for(weights, cache_dir, log), device, threads)
    if name == "tensorrt":
        require_tensorrt()  # before exporting or building anything
        cuda_device = device if device.startswith("cuda") else "cuda:0"
        if kind == "engine":
            return TensorRTBackend(weights, cuda_device)  # type: ignore[arg-type]
        from .export import cached_engine

        engine = cached_engine(_onnx_for(weights, cache_dir, log), cache_dir, fp16=fp16, device=cuda_device, log=log)
        return TensorRTBackend(engine, cuda_device)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKEND_NAMES)}")


def auto_order() -> tuple[list[str], str]:
    """The backends ``auto`` tries, best first, and why (a sentence for the log).

    Whatever the network; :func:`create_backend` puts OpenVINO before ONNX Runtime for a network whose
    export asks for it (:func:`prefers_openvino`).
    """
    cuda = torch.cuda.is_available()
    has_trt = tensorrt_available()
    has_ort = onnxruntime_available()
    order: list[str] = []
    if cuda and has_trt:
        order.append("tensorrt")
    if has_ort:
        order.append("onnxruntime")
    order.append("torch")
    why = (
        f"CUDA {'available' if cuda else 'not available'}, TensorRT {'installed' if has_trt else 'not installed'}, "
        f"ONNX Runtime {'installed' if has_ort else 'not installed'}, "
        f"OpenVINO {'installed' if openvino_available() else 'not installed'}"
    )
    return order, why


def create_backend(
    name: str = "auto",
    weights: str | Path | None = None,
    device: str = "cpu",
    *,
    cache_dir: str | Path | None = None,
    fp16: bool = False,
    threads: int = 0,
    log: Callable[[str], None] | None = None,
    tile: str | int | None = None,
    max_memory: str | int = 0,
) -> Backend:
    """Build the backend ``name`` (one of :data:`BACKEND_NAMES`) for ``weights`` on ``device``.

    ``weights``: ``None``/``""`` = the shipped weights; a ``.pt`` file; an ``.onnx`` file
    (onnxruntime, tensorrt); a TensorRT engine (tensorrt). ``cache_dir``: where exported ONNX
    models and TensorRT engines are kept (default ``$LRCFUSE_CACHE`` or ``~/.cache/lrcfuse``).
    ``fp16``: TensorRT precision. ``threads``: CPU threads (0 = all cores). ``log`` receives
    one-line messages (default: the ``lrcfuse`` logger at INFO).

    ``auto`` tries TensorRT (CUDA and TensorRT present), then ONNX Runtime, then PyTorch (with
    OpenVINO before ONNX Runtime, on the CPU, for a network whose export asks for it and where OpenVINO
    is installed), logs which one it took and why, and logs every backend it had to pass over with the
    reason.
    An explicit name that cannot run raises :class:`BackendUnavailable` naming what to install.

    ``tile`` (``'auto'`` | ``'off'`` | a tile size in pixels; ``None``: the plain backend) and
    ``max_memory`` (bytes or ``'2GB'``): the backend wrapped in a
    :class:`lrcfuse_model.inference.tiling.TiledBackend` that cuts frames too large for the budget
    into overlapping tiles (same result as the whole frame) and gives memory back after a larger frame.
    """
    log = log or _LOG.info
    if tile is not None:  # bad tiling options fail before anything is exported or built
        parse_tile(tile), parse_memory(max_memory)
    backend = _create(name, weights, device, cache_dir, fp16, threads, log)
    if tile is None:
        return backend
    return tiled(backend, _pytorch_model(backend, weights), tile, max_memory, log=log)


def _pytorch_model(backend: Backend, weights: str | Path | None) -> torch.nn.Module | None:
    """The PyTorch form of the network a backend runs (its geometry decides the tiles); None for a bare ONNX/engine."""
    model = getattr(backend, "model", None)
    if model is not None:
        return model
    if _weights_kind(weights) != "pytorch":
        return None
    from ..nn.checkpoint import load_model

    return load_model(weights or None, "cpu")


def _create(
    name: str,
    weights: str | Path | None,
    device: str,
    cache_dir: str | Path | None,
    fp16: bool,
    threads: int,
    log: Callable[[str], None],
) -> Backend:
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKEND_NAMES)}")
    if name != "auto":
        return _make(name, weights, device, cache_dir, fp16, threads, log)
    order, why = auto_order()
    kind = _weights_kind(weights)
    if kind == "engine":
        order = [n for n in order if n == "tensorrt"] or ["tensorrt"]
    elif kind == "onnx":
        order = [n for n in order if n != "torch"]
    if kind != "engine" and device == "cpu" and openvino_available():
        try:
            if prefers_openvino(_onnx_for(weights, cache_dir, log)):
                order.insert(order.index("onnxruntime" if "onnxruntime" in order else "torch"), "openvino")
                why += "; this network's export runs fastest on OpenVINO"
        except (ImportError, RuntimeError) as exc:  # no onnx to export with, or OpenVINO cannot read the file
            log(f"backend auto: OpenVINO not considered ({exc})")
    failures: list[str] = []
    for candidate in order:
        # TensorRT runs on the GPU whatever `device` says; the CPU backends honour it.
        dev = device if candidate != "tensorrt" or device.startswith("cuda") else "cuda:0"
        try:
            backend = _make(candidate, weights, dev, cache_dir, fp16, threads, log)
        except (BackendUnavailable, ImportError, RuntimeError) as exc:
            failures.append(f"{candidate}: {exc}")
            log(f"backend auto: {candidate} could not start ({exc}); trying the next one")
            continue
        log(f"backend auto: using {candidate} on {backend.device} ({why})")
        return backend
    raise BackendUnavailable("backend auto: no backend could start: " + "; ".join(failures))
