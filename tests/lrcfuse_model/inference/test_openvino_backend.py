"""lrcfuse_model.inference.openvino_backend: the ONNX export on OpenVINO (real), where openvino is installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from inference_testing import frames

from lrcfuse_model.inference.backends import BackendUnavailable, TorchBackend, create_backend

if importlib.util.find_spec("openvino"):
    from lrcfuse_model.inference.openvino_backend import OpenVinoBackend


@pytest.fixture(scope="module")
def ov_backend(small_onnx):
    if not importlib.util.find_spec("openvino"):
        pytest.skip('no OpenVINO: the openvino package is not installed (pip install "lrcfuse_ros[openvino]")')
    return OpenVinoBackend(small_onnx, "cpu", threads=1)


@pytest.mark.parametrize("size", [(2, 4), (3, 5), (4, 2), (40, 48), (64, 31)])
def test_openvino_matches_torch_at_any_size(small_model, ov_backend, size):
    """One compiled model serves every size (the export's dynamic H and W), in float32 (no bf16)."""
    ir, vi = frames(*size)
    out = ov_backend.fuse(ir, vi)
    assert out.shape == size and out.dtype == np.float32
    assert np.abs(out - TorchBackend(small_model).fuse(ir, vi)).max() < 1e-5


def test_openvino_backend_facts(ov_backend, small_onnx):
    assert (ov_backend.name, ov_backend.device, ov_backend.threads) == ("openvino", "cpu", 1)
    assert ov_backend.compiled_for((20, 24)).get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    with pytest.raises(BackendUnavailable, match="runs on the CPU"):
        OpenVinoBackend(small_onnx, "cuda:0")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OpenVinoBackend(small_onnx.with_name("missing.onnx"))
    # OpenVINO computes frames this small wrongly: refused, not answered with a wrong image
    with pytest.raises(ValueError, match="cannot fuse a 3x2 frame"):
        ov_backend.fuse(*frames(2, 3))


def test_openvino_gives_each_thread_its_own_request(ov_backend):
    """The node fuses on two threads at once: each call must get its own frame's result back."""
    from concurrent.futures import ThreadPoolExecutor

    pairs = [frames(48, 40) for _ in range(8)]
    alone = [ov_backend.fuse(ir, vi) for ir, vi in pairs]
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(pool.map(lambda p: ov_backend.fuse(*p), pairs * 3))
    for k, out in enumerate(together):
        np.testing.assert_array_equal(out, alone[k % len(pairs)])


def test_openvino_rejects_a_foreign_onnx_model(ov_backend, tmp_path):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", [x], [y])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "other.onnx")
    with pytest.raises(ValueError, match=r"expected inputs \['ir', 'vi'\]"):
        OpenVinoBackend(tmp_path / "other.onnx")


def test_openvino_missing_names_what_to_install(small_onnx, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError, as when not installed
    with pytest.raises(BackendUnavailable, match=r"pip install openvino"):
        create_backend("openvino", small_onnx)


def test_openvino_compiles_a_fixed_size_model_for_a_stream(small_model, small_onnx):
    """The first frame of a size runs on the any-size model; the second in a row on one compiled for that size."""
    backend = OpenVinoBackend(small_onnx, threads=1)
    any_size = backend.compiled_for((30, 40))
    assert any_size.input("ir").get_partial_shape().is_dynamic
    fixed = backend.compiled_for((30, 40))
    assert fixed is not any_size and list(fixed.input("ir").get_shape()) == [1, 1, 30, 40]
    assert backend.compiled_for((30, 40)) is fixed
    assert backend.compiled_for((31, 40)).input("ir").get_partial_shape().is_dynamic  # a new size: any-size again
    for size in ((30, 40), (30, 40), (17, 23), (30, 40), (30, 40)):  # each size on whichever model: the same result
        ir, vi = frames(*size)
        assert np.abs(backend.fuse(ir, vi) - TorchBackend(small_model).fuse(ir, vi)).max() < 1e-5


def test_cli_fuse_on_openvino(tmp_path, tiny_weights, monkeypatch):
    """``lrcfuse fuse --backend openvino`` on a folder: the same images as on ONNX Runtime, within one grey level
    (three equal-size pairs, so both the any-size and the fixed-size compiled model write some)."""
    if not importlib.util.find_spec("openvino"):
        pytest.skip('no OpenVINO: the openvino package is not installed (pip install "lrcfuse_ros[openvino]")')
    from PIL import Image

    from lrcfuse_model.cli import main as cli_main

    g = np.random.default_rng(4)
    for side in ("ir", "vi"):
        (tmp_path / side).mkdir()
        for k in range(3):
            Image.fromarray(g.integers(0, 256, (40, 56), dtype=np.uint8)).save(tmp_path / side / f"{k}.png")
    common = ["fuse", "--model", str(tiny_weights), "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi")]
    monkeypatch.setenv("LRCFUSE_CACHE", str(tmp_path / "cache"))  # the ONNX export of tiny_weights goes there
    assert cli_main([*common, "--backend", "openvino", "--out", str(tmp_path / "ov")]) == 0
    assert cli_main([*common, "--backend", "onnxruntime", "--out", str(tmp_path / "ort")]) == 0
    for k in range(3):
        ov, ort = (np.asarray(Image.open(tmp_path / d / f"{k}.png"), int) for d in ("ov", "ort"))
        assert ov.shape == (40, 56) and np.abs(ov - ort).max() <= 1
