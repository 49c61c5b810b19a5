"""lrcfuse_model.inference.backends: one interface over PyTorch, ONNX Runtime (real) and TensorRT (where installed)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from inference_testing import RNG, SMALL, frames

from lrcfuse_model import LRCFuse, save_weights
from lrcfuse_model.inference.backends import (
    BACKEND_NAMES,
    Backend,
    BackendUnavailable,
    OnnxRuntimeBackend,
    TensorRTBackend,
    TorchBackend,
    create_backend,
)
from lrcfuse_model.inference.export import export_onnx
from lrcfuse_model.inference.fuser import Fuser


@pytest.fixture(scope="module")
def ort_backend(small_onnx) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(small_onnx, "cpu", threads=1)


def test_backend_names():
    assert BACKEND_NAMES == ("auto", "torch", "onnxruntime", "openvino", "tensorrt")


def test_torch_backend_is_the_network(tiny_model):
    ir, vi = frames(21, 26)
    backend = TorchBackend(tiny_model)
    assert isinstance(backend, Backend) and backend.name == "torch" and backend.device == "cpu"
    with torch.no_grad():
        expected = tiny_model(torch.from_numpy(ir)[None, None], torch.from_numpy(vi)[None, None])[0, 0].numpy()
    out = backend.fuse(ir, vi)
    assert out.dtype == np.float32 and out.shape == (21, 26)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("size", [(2, 2), (3, 5), (33, 47), (40, 48), (64, 31)])
def test_onnxruntime_matches_torch_at_any_size(small_model, ort_backend, size):
    """One exported model serves every size, odd or even (dynamic H and W)."""
    ir, vi = frames(*size)
    out = ort_backend.fuse(ir, vi)
    assert out.shape == size and out.dtype == np.float32
    assert np.abs(out - TorchBackend(small_model).fuse(ir, vi)).max() < 1e-5


def test_onnxruntime_backend_facts(ort_backend):
    assert ort_backend.name == "onnxruntime" and ort_backend.device == "cpu"
    assert ort_backend.providers == ["CPUExecutionProvider"]
    ort_backend.warmup((20, 24), runs=1)


def test_fuser_runs_on_any_backend(small_model, ort_backend):
    """Preprocessing and the output image are shared: the same uint8 image from either backend."""
    ir = RNG.integers(0, 65536, (37, 50), dtype=np.uint16)  # 16-bit thermal, percentile-normalised
    vi = RNG.integers(0, 256, (37, 50, 3), dtype=np.uint8)  # colour visible, YCbCr
    on_torch = Fuser(small_model)(ir, vi)
    on_ort = Fuser(backend=ort_backend)(ir, vi)
    assert on_ort.shape == (37, 50, 3) and on_ort.dtype == np.uint8
    # Float rounding (~1e-7) may move a value across a rounding boundary: at most one grey level.
    assert np.abs(on_ort.astype(int) - on_torch.astype(int)).max() <= 1
    fuser = Fuser(backend=ort_backend)
    assert fuser.backend is ort_backend and fuser.device == "cpu" and fuser.model is None


def test_backends_reject_mismatched_inputs(ort_backend, tiny_model):
    for backend in (ort_backend, TorchBackend(tiny_model)):
        with pytest.raises(ValueError, match="same size"):
            backend.fuse(np.zeros((10, 12), np.float32), np.zeros((10, 13), np.float32))
        with pytest.raises(ValueError, match="H x W"):
            backend.fuse(np.zeros((10, 12, 3), np.float32), np.zeros((10, 12, 3), np.float32))


def test_onnxruntime_rejects_a_foreign_onnx_model(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", [x], [y])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    with pytest.raises(ValueError, match=r"expected inputs \['ir', 'vi'\]"):
        OnnxRuntimeBackend(path)


def test_onnxruntime_cuda_without_the_provider(small_onnx):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu with CUDA is installed here: the error path cannot happen")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        OnnxRuntimeBackend(small_onnx, "cuda:0")


def test_create_backend_unknown_name():
    with pytest.raises(ValueError, match="auto, torch, onnxruntime, openvino, tensorrt"):
        create_backend("openvnio")


def test_create_backend_torch_from_weights(tiny_model, tiny_weights):
    backend = create_backend("torch", tiny_weights)
    ir, vi = frames(12, 15)
    np.testing.assert_array_equal(backend.fuse(ir, vi), TorchBackend(tiny_model).fuse(ir, vi))
    with pytest.raises(ValueError, match=r"\.pt"):
        create_backend("torch", tiny_weights.with_suffix(".onnx"))


def test_onnxruntime_exports_once_per_weights(small_model, tmp_path):
    """The ONNX model is exported on first use into the cache, keyed by the weights' content."""
    weights = save_weights(small_model, tmp_path / "a.pt")
    messages: list[str] = []
    first = create_backend("onnxruntime", weights, cache_dir=tmp_path / "cache", threads=1, log=messages.append)
    assert any("exporting" in m for m in messages)
    messages.clear()
    again = create_backend("onnxruntime", weights, cache_dir=tmp_path / "cache", threads=1, log=messages.append)
    assert not any("exporting" in m for m in messages)
    assert again.onnx_path == first.onnx_path and first.onnx_path.parent == tmp_path / "cache" / "onnx"
    torch.manual_seed(2)
    other = save_weights(LRCFuse(**SMALL), tmp_path / "b.pt")
    assert create_backend("onnxruntime", other, cache_dir=tmp_path / "cache", threads=1).onnx_path != first.onnx_path
    # An .onnx file runs as it is.
    direct = create_backend("onnxruntime", first.onnx_path, threads=1)
    assert direct.onnx_path == first.onnx_path


def test_auto_logs_its_choice(small_model, small_onnx, tmp_path):
    """ONNX Runtime for an export that names no CPU runtime; OpenVINO, where installed, for one that names it."""
    if torch.cuda.is_available() and importlib.util.find_spec("tensorrt"):
        pytest.skip("CUDA and TensorRT present: auto picks TensorRT (covered by test_tensorrt_matches_torch)")
    messages: list[str] = []
    plain = export_onnx(small_model, tmp_path / "plain.onnx", deploy=False)  # no lrcfuse.cpu_runtime hint
    backend = create_backend("auto", plain, threads=1, log=messages.append)
    assert backend.name == "onnxruntime"
    assert messages[-1].startswith("backend auto: using onnxruntime on cpu")
    assert "TensorRT not installed" in messages[-1] or "CUDA not available" in messages[-1]
    expected = "openvino" if importlib.util.find_spec("openvino") else "onnxruntime"
    assert create_backend("auto", small_onnx, threads=1, log=messages.append).name == expected
    if expected == "openvino":
        assert messages[-1].endswith("this network's export runs fastest on OpenVINO)")


def test_tensorrt_missing_names_what_to_install(small_onnx):
    if importlib.util.find_spec("tensorrt"):
        pytest.skip("tensorrt is installed here: the missing-library error cannot happen")
    with pytest.raises(BackendUnavailable, match="pip install tensorrt"):
        create_backend("tensorrt", small_onnx)
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        TensorRTBackend(small_onnx.with_suffix(".engine"))


def test_tensorrt_matches_torch(small_model, small_onnx, tmp_path):
    if not importlib.util.find_spec("tensorrt"):
        pytest.skip("no TensorRT: the tensorrt package is not installed (needs an NVIDIA GPU machine)")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA: TensorRT needs an NVIDIA GPU and a CUDA build of PyTorch")
    shapes = {"min": (2, 2), "opt": (64, 80), "max": (128, 128)}
    from lrcfuse_model.inference.export import cached_engine

    engine = cached_engine(small_onnx, tmp_path, shapes=shapes)
    backend = TensorRTBackend(engine)
    assert backend.name == "tensorrt" and backend.device.startswith("cuda")
    for size in ((3, 5), (64, 80), (127, 33)):
        ir, vi = frames(*size)
        assert np.abs(backend.fuse(ir, vi) - TorchBackend(small_model).fuse(ir, vi)).max() < 1e-4
    with pytest.raises(ValueError, match="outside the TensorRT engine's profile"):
        backend.fuse(*frames(130, 40))
    assert cached_engine(small_onnx, tmp_path, shapes=shapes) == engine  # second launch: from the cache
