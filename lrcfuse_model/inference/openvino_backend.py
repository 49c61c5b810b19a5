"""The OpenVINO backend: an exported ONNX model on OpenVINO's CPU plugin (``pip install openvino``).

The default LRCFuse's fastest CPU runtime: 1.96x (640x512) and 2.20x (1024x768) the speed of its
unrewritten export on ONNX Runtime, outputs within 1.2e-6 of PyTorch's (docs/deployment.md, "The
default model on OpenVINO"). Its export says so (``lrcfuse.cpu_runtime=openvino``, read by
:func:`prefers_openvino`), and backend ``auto`` takes OpenVINO for it where it is installed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from .backend_base import Backend, check_io_names, cpu_threads, network_inputs
from .runtimes import CPU_RUNTIME_HINT, CPU_THREADS_HINT, BackendUnavailable, _import_openvino


class OpenVinoBackend(Backend):
    """An exported ONNX model on OpenVINO's CPU plugin.

    **Shapes.** The export's height and width are dynamic, and a model compiled for any size serves
    the first frame of each size. When the same size comes twice in a row (a camera stream, a folder
    of equal images), the model is compiled for that size alone (0.3 s once) and runs from then on:
    1.27x faster than the any-size model at 640x512, same outputs to the bit. One fixed-size model is
    kept (the last stream's size); the any-size one is dropped when it is made, since each compiled
    model keeps the buffers of the largest frame it ran, and compiled again when a new size comes.

    Each calling thread gets its own infer request (a request is not safe to share between threads;
    the node runs two inference threads). The precision is pinned to float32 so the outputs are the
    export's on every CPU (OpenVINO would run bf16 where the CPU has it); ``threads`` and the export's
    ``lrcfuse.cpu_threads`` hint mean what they mean for :class:`OnnxRuntimeBackend`.

    Frames under 4 x 4 pixels are refused: OpenVINO 2026.4 computes 2x2, 2x3 and 3x2 frames of these
    networks wrongly (off by up to 0.01, where ONNX Runtime and PyTorch agree within 1e-7; with every
    intermediate tensor exposed as an output it agrees again, so one of its graph fusions is at fault).
    No camera or tile is that small.
    """

    name = "openvino"
    MIN_SIDE = 4  # frames with both sides below this are refused (see above)

    def __init__(self, onnx_path: str | Path, device: str = "cpu", threads: int = 0) -> None:
        ov = _import_openvino()
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"ONNX model {self.onnx_path} does not exist")
        require_cpu(device)
        self.device = "cpu"
        self._core = ov.Core()
        self._model = self._core.read_model(str(self.onnx_path))
        check_io_names(
            self.onnx_path,
            [i.get_any_name() for i in self._model.inputs],
            [o.get_any_name() for o in self._model.outputs],
        )
        self.threads = cpu_threads(threads, rt_info(self._model, CPU_THREADS_HINT))
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",  # one frame at a time, all threads on it
            "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self._lock = threading.Lock()
        self._requests = threading.local()
        self._fixed: tuple[tuple[int, int], Any] | None = None  # (size, model compiled for that size alone)
        self._last_size: tuple[int, int] | None = None
        self._release_next = False
        self._any_size: Any = self._compile(None)  # fails here, not on the first frame, if OpenVINO cannot

    def _compile(self, size: tuple[int, int] | None) -> Any:
        model = self._model
        if size is not None:
            model = model.clone()
            model.reshape({name: [1, 1, *size] for name in ("ir", "vi")})
        return self._core.compile_model(model, "CPU", self.config)

    def compiled_for(self, size: tuple[int, int]) -> Any:
        """The compiled model that runs an ``H x W`` frame now (see the class doc: any-size, or fixed-size)."""
        with self._lock:
            if self._fixed is not None and self._fixed[0] == size:
                return self._fixed[1]
            if size == self._last_size:  # the second frame of this size in a row
                self._fixed, self._any_size = (size, self._compile(size)), None
                return self._fixed[1]
            self._last_size = size
            if self._any_size is None:
                self._any_size = self._compile(None)
            return self._any_size

    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        ir_in, vi_in = network_inputs(ir, vi_y)
        if max(ir.shape) < self.MIN_SIDE:
            raise ValueError(
                f"backend 'openvino' cannot fuse a {ir.shape[1]}x{ir.shape[0]} frame (OpenVINO computes frames "
                f"under {self.MIN_SIDE}x{self.MIN_SIDE} pixels wrongly); use backend onnxruntime or torch for frames "
                "this small"
            )
        compiled = self.compiled_for(ir.shape)
        mine = getattr(self._requests, "pair", None)  # this thread's (compiled model, its request)
        if mine is None or mine[0] is not compiled:
            mine = self._requests.pair = (compiled, compiled.create_infer_request())
        result = mine[1].infer({"ir": ir_in, "vi": vi_in})
        # The output tensor is the request's own buffer, overwritten by its next run: copy it out.
        out = np.array(result[compiled.output(0)][0, 0], dtype=np.float32, copy=True)
        if self._release_next:
            # A compiled model keeps the buffers of the largest frame it ran (dropping the request frees none):
            # drop them all; the next frame compiles again (0.3 s for the default model).
            with self._lock:
                self._release_next, self._fixed, self._any_size, self._last_size = False, None, None, None
                self._requests = threading.local()
        return out

    def shrink_after_next_run(self) -> None:
        """Have the next run give back the buffers sized for its frame (tiling asks for it after a larger frame)."""
        self._release_next = True


def require_cpu(device: str) -> None:
    """OpenVINO runs here on the CPU only: any other ``device`` is :class:`BackendUnavailable`."""
    if device != "cpu":
        raise BackendUnavailable(
            f"backend 'openvino' runs on the CPU (device 'cpu'), not on {device!r}: "
            "use tensorrt or onnxruntime for an NVIDIA GPU"
        )


def rt_info(model: Any, key: str) -> str:
    """An ONNX metadata entry of a model OpenVINO read (its ``rt_info`` under ``framework``), or ``''``."""
    path = ["framework", key]
    return model.get_rt_info(path).astype(str) if model.has_rt_info(path) else ""


def prefers_openvino(onnx_path: str | Path) -> bool:
    """Whether an export says it runs fastest on OpenVINO on a CPU (``lrcfuse.cpu_runtime=openvino``)."""
    model = _import_openvino().Core().read_model(str(onnx_path))
    return rt_info(model, CPU_RUNTIME_HINT) == "openvino"
