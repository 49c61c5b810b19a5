"""Which inference runtimes and devices are here: the lowest layer of :mod:`lrcfuse_model.inference`.

Importing ONNX Runtime, OpenVINO or TensorRT, checking for CUDA and parsing CUDA device names, with
:class:`BackendUnavailable` naming what to install or change when something is missing. Used by
the backends (:mod:`~lrcfuse_model.inference.backends`) and the engine build
(:mod:`~lrcfuse_model.inference.export`), which import nothing else of each other for it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

# Export metadata that the ONNX Runtime backend reads: "0" = the CPU pool without spin-waiting
# (session.intra_op.allow_spinning); written by export_onnx for networks that ask for it.
SPIN_WAIT_HINT = "lrcfuse.cpu_spin_wait"
# Export metadata that the CPU backends read: the thread count the network runs best on, when fewer than the
# cores (LRCFuse-RT: its operators are too small to share); see backend_base.cpu_threads.
CPU_THREADS_HINT = "lrcfuse.cpu_threads"
# Export metadata that backend ``auto`` reads: the CPU runtime this network measured fastest on, where it is
# installed ("openvino": the default LRCFuse, 1.4-1.6x ONNX Runtime's CPU provider; docs/deployment.md).
CPU_RUNTIME_HINT = "lrcfuse.cpu_runtime"


class BackendUnavailable(RuntimeError):
    """A backend whose library or device is missing; the message says what to install or change."""


def _cuda_index(device: str) -> int:
    """``'cuda'`` -> 0, ``'cuda:1'`` -> 1; anything else is an error."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise ValueError(f"expected a CUDA device 'cuda' or 'cuda:N', got {device!r}")


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable(
            "backend 'onnxruntime' needs the onnxruntime package: pip install onnxruntime "
            '(onnxruntime-gpu for the CUDA provider), or pip install "lrcfuse_ros[export]"'
        ) from exc
    return onnxruntime


def onnxruntime_providers(ort: Any, device: str, user: str = "backend 'onnxruntime'") -> list[Any]:
    """ONNX Runtime execution providers for ``device``: ``cpu``, or ``cuda[:N]`` (CUDA on device N, CPU for the
    operators CUDA lacks); :class:`BackendUnavailable` when the CUDA provider is not installed. ``user`` names who
    asks, in that message."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    index = _cuda_index(device)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailable(
            f"{user} on {device} needs the CUDA execution provider: "
            f"pip install onnxruntime-gpu (available here: {ort.get_available_providers()})"
        )
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def onnxruntime_available() -> bool:
    """Whether the ``onnxruntime`` package can be imported (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailable(
            "backend 'openvino' needs the openvino package: pip install openvino, "
            'or pip install "lrcfuse_ros[openvino]"'
        ) from exc
    return openvino


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def _import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(
            "backend 'tensorrt' needs NVIDIA TensorRT 10 for Python: pip install tensorrt-cu12 "
            "(on a machine with an NVIDIA GPU and driver; see docs/deployment.md)"
        ) from exc
    return tensorrt


def require_tensorrt() -> Any:
    """The ``tensorrt`` module where TensorRT can run (package and CUDA GPU); else :class:`BackendUnavailable`."""
    trt = _import_tensorrt()
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "backend 'tensorrt' needs an NVIDIA GPU and a CUDA build of PyTorch (torch.cuda.is_available() is False)"
        )
    return trt


def tensorrt_available() -> bool:
    """Whether the ``tensorrt`` package can be imported (without importing it)."""
    return importlib.util.find_spec("tensorrt") is not None
