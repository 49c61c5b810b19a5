"""lrcfuse_model.inference.export + export_check: the ONNX file (dynamic sizes, TensorRT ops), caches, parity, CLI."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from lrcfuse_model import LRCFuse
from lrcfuse_model.cli import main
from lrcfuse_model.inference.backends import OnnxRuntimeBackend, TorchBackend
from lrcfuse_model.inference.export import (
    engine_cache_key,
    export_onnx,
    file_sha256,
    onnx_operators,
)
from lrcfuse_model.inference.export_check import check_parity
from lrcfuse_model.nn.checkpoint import DEFAULT_WEIGHTS, load_model

# Every operator the export may contain; each is in TensorRT 10's ONNX operator support matrix
# (onnx-tensorrt docs/operators.md), Pad including mode=reflect.
TENSORRT_OPS = {"Conv", "ConvTranspose", "Pad", "Relu", "Clip", "Add", "Sub", "Mul", "Div", "Neg", "Slice", "Concat"}
# 16 code channels, so that the split of the 1-output convs applies (>= 16 input channels).
SMALL = {"code_channels": 8, "feature_channels": 16, "decoder_channels": [8, 8], "llrr_blocks": 2, "cfpm_stages": 2}


@pytest.fixture(scope="module")
def small_model() -> LRCFuse:
    torch.manual_seed(3)
    return LRCFuse(**SMALL).eval()


@pytest.fixture(scope="module")
def small_onnx(small_model, tmp_path_factory):
    return export_onnx(small_model, tmp_path_factory.mktemp("onnx") / "small.onnx")


def test_onnx_inputs_outputs_and_dynamic_sizes(small_onnx):
    model = onnx.load(str(small_onnx))
    onnx.checker.check_model(model, full_check=True)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in model.graph.input] == ["ir", "vi"]
    assert [o.name for o in model.graph.output] == ["fused"]
    ir, vi = (dims(i) for i in model.graph.input)
    assert ir[:2] == [1, 1] and all(isinstance(d, str) for d in ir[2:])
    assert ir == vi  # both inputs share the same symbolic height and width
    assert all(isinstance(d, str) for d in dims(model.graph.output[0])[2:])


def test_onnx_uses_only_tensorrt_operators(small_onnx):
    ops = onnx_operators(small_onnx)
    assert set(ops) <= TENSORRT_OPS, set(ops) - TENSORRT_OPS
    model = onnx.load(str(small_onnx))
    modes = {a.s.decode() for n in model.graph.node if n.op_type == "Pad" for a in n.attribute if a.name == "mode"}
    assert modes == {"reflect"}


def test_transposed_convs_become_convs(small_onnx, small_model):
    """The decoder's stride-1 ConvTranspose layers are exported as the equivalent Convs (flipped kernels)."""
    assert "ConvTranspose" not in onnx_operators(small_onnx)
    model = onnx.load(str(small_onnx))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    as_conv = [w for name, w in weights.items() if name.endswith(".as_conv_weight")]
    decoder = [m for m in small_model.decoder.layers if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(as_conv) == len(decoder) == 3
    for layer in decoder:
        flipped = layer.weight.detach().numpy()[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        assert any(w.shape == flipped.shape and np.array_equal(w, flipped) for w in as_conv)


def test_single_output_convs_are_split(small_onnx):
    """No 3x3 conv with one output channel and >= 16 inputs is left; each became 1x1 taps + pad + sum."""
    model = onnx.load(str(small_onnx))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs = [weights[n.input[1]].shape for n in model.graph.node if n.op_type == "Conv"]
    assert not [s for s in convs if s[0] == 1 and s[1] >= 16 and s[2:] == (3, 3)]
    taps = [w for name, w in weights.items() if name.endswith(".taps")]
    # CFPM K_x, K_y (16 -> 1): 2 stages x 2. Since export format 4, LLRR's C1 and CFPM's dictionaries are
    # written as 1x1 tap convolutions by the re-parametrised module itself (inference.deploy_graph.DeployLRCFuse).
    assert len(taps) == 4 and all(w.shape[0] == 9 and w.shape[2:] == (1, 1) for w in taps)


def test_engine_cache_key_depends_on_every_fact():
    shapes = {"min": (64, 64), "opt": (512, 640), "max": (1024, 1280)}
    base = ("abc", "NVIDIA H100", "10.3.0", False, shapes)
    key = engine_cache_key(*base)
    assert key == engine_cache_key(*base) and len(key) == 64
    variants = [
        ("abd", *base[1:]),
        (base[0], "NVIDIA A100", *base[2:]),
        (*base[:2], "10.4.0", *base[3:]),
        (*base[:3], True, shapes),
        (*base[:4], {**shapes, "max": (1080, 1920)}),
    ]
    assert len({engine_cache_key(*v) for v in variants} | {key}) == 6


def test_check_parity_on_pairs_and_synthetic_frames(small_model, small_onnx, make_dataset):
    data = make_dataset("pairs", names=("a", "b", "c"), size_hw=(31, 44))
    ort, ref = OnnxRuntimeBackend(small_onnx, threads=1), TorchBackend(small_model)
    rows = check_parity(ort, ref, data, n_pairs=2)
    assert [r["pair"] for r in rows] == ["random 91x67", "random 96x64", "pairs/a", "pairs/b"]
    assert rows[2]["height"] == 31 and rows[2]["width"] == 44
    assert all(r["max_abs"] < 1e-5 for r in rows)
    assert [r["pair"] for r in check_parity(ort, ref, data, names=["c"])][-1] == "pairs/c"
    with pytest.raises(ValueError, match="no pairs named"):
        check_parity(ort, ref, data, names=["zz"])


def test_check_parity_sees_a_difference(small_model, small_onnx):
    """The check can fail: a backend running other weights is caught."""
    torch.manual_seed(9)
    other = TorchBackend(LRCFuse(**SMALL).eval())
    rows = check_parity(OnnxRuntimeBackend(small_onnx, threads=1), other)
    assert min(r["max_abs"] for r in rows) > 1e-3


def test_cli_export_onnx(tiny_weights, make_dataset, tmp_path, capsys):
    data = make_dataset("check", names=("p0", "p1"), size_hw=(25, 36))
    out = tmp_path / "out" / "tiny.onnx"
    rc = main(["export", "--weights", str(tiny_weights), "--out", str(out), "--check-data", str(data)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert out.is_file() and "onnx.checker: ok" in printed
    assert "parity ONNX Runtime vs PyTorch" in printed and "check/p0" in printed and "check/p1" in printed
    ort = OnnxRuntimeBackend(out, threads=1)
    frame = np.random.default_rng(0).random((19, 23), dtype=np.float32)
    ref = TorchBackend(load_model(tiny_weights)).fuse(frame, frame)
    assert np.abs(ort.fuse(frame, frame) - ref).max() < 1e-5


def test_export_into_a_file_as_if_it_were_a_folder_names_the_file(tiny_model, tmp_path):
    (tmp_path / "some_file").write_text("keep me")
    message = f"{tmp_path / 'some_file'} is a file, so x.onnx cannot be written"
    for target in (tmp_path / "some_file" / "x.onnx", tmp_path / "some_file" / "deeper" / "x.onnx"):
        with pytest.raises(NotADirectoryError, match=message):
            export_onnx(tiny_model, target)
    assert (tmp_path / "some_file").read_text() == "keep me"


def test_cli_export_engine_without_tensorrt(tiny_weights, tmp_path, capsys):
    if importlib.util.find_spec("tensorrt") and torch.cuda.is_available():
        pytest.skip("TensorRT and CUDA are present: the engine is built instead")
    rc = main(["export", "--format", "engine", "--weights", str(tiny_weights), "--out", str(tmp_path / "x.engine")])
    assert rc == 2
    assert "tensorrt" in capsys.readouterr().err.lower()


def test_shipped_weights_parity_on_tno42(shared_data, tmp_path):
    """The real network on real pairs at their native (odd and even) sizes: within 1e-4 of PyTorch."""
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"shipped weights {DEFAULT_WEIGHTS} do not exist")
    tno = shared_data / "tno42"
    if not (tno / "ir").is_dir():
        pytest.skip(f"{tno} not found")
    model = load_model(None)
    path = export_onnx(model, tmp_path / "lrcfuse.onnx")
    assert file_sha256(path)
    # 37: 359x247 (odd width and height), 08: 256x256.
    rows = check_parity(OnnxRuntimeBackend(path), TorchBackend(model), tno, names=["37", "08"], synthetic_sizes=())
    assert [(r["width"], r["height"]) for r in rows] == [(359, 247), (256, 256)]
    assert max(r["max_abs"] for r in rows) <= 1e-4, rows


def test_build_engine_fp32_and_fp16(small_model, small_onnx, tmp_path):
    if not importlib.util.find_spec("tensorrt"):
        pytest.skip("no TensorRT: the tensorrt package is not installed (needs an NVIDIA GPU machine)")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA: TensorRT needs an NVIDIA GPU and a CUDA build of PyTorch")
    from lrcfuse_model.inference.backends import TensorRTBackend
    from lrcfuse_model.inference.export import build_engine

    shapes = {"min": (8, 8), "opt": (64, 64), "max": (96, 96)}
    timing = tmp_path / "timing.cache"
    for fp16, tolerance in ((False, 1e-4), (True, 2e-2)):
        engine = build_engine(small_onnx, tmp_path / f"e{fp16}.engine", fp16=fp16, shapes=shapes, timing_cache=timing)
        assert timing.is_file()
        rows = check_parity(TensorRTBackend(engine), TorchBackend(small_model), synthetic_sizes=((33, 47), (64, 64)))
        assert max(r["max_abs"] for r in rows) < tolerance, rows


# LRCFuse-RT adds pooling, edge padding, a resize and an element-wise max: all in TensorRT 10's matrix too.
RT_OPS = TENSORRT_OPS | {"AveragePool", "Resize", "Max", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "Mod",
                         "Reshape", "Expand", "Range", "ConstantOfShape", "Equal", "Where", "Split", "Floor", "Ceil"}


@pytest.fixture(scope="module")
def rt_model_and_onnx(tmp_path_factory):
    from lrcfuse_model.nn.rt_model import LRCFuseRT

    torch.manual_seed(5)
    model = LRCFuseRT(code_channels=4, llrr_blocks=2, feature_channels=4, cfpm_stages=1, head_channels=4).eval()
    return model, export_onnx(model, tmp_path_factory.mktemp("rt") / "rt.onnx")


def test_rt_export_asks_for_one_thread(rt_model_and_onnx):
    _, path = rt_model_and_onnx
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta == {"lrcfuse.architecture": "lrcfuse-rt", "lrcfuse.cpu_threads": "1"}
    assert set(onnx_operators(path)) <= RT_OPS, set(onnx_operators(path)) - RT_OPS
    assert OnnxRuntimeBackend(path, "cpu").threads == 1  # threads=0: the export's hint
    assert OnnxRuntimeBackend(path, "cpu", threads=2).threads == 2  # an explicit count wins


@pytest.mark.parametrize("size", [(37, 53), (512, 640), (5, 3)])
def test_rt_export_matches_pytorch(rt_model_and_onnx, size):
    model, path = rt_model_and_onnx
    g = np.random.default_rng(0)
    ir, vi = g.random(size, dtype=np.float32), g.random(size, dtype=np.float32)
    expected = TorchBackend(model).fuse(ir, vi)
    np.testing.assert_allclose(OnnxRuntimeBackend(path, "cpu").fuse(ir, vi), expected, atol=1e-5)


def test_export_cli_exports_the_rt_model_by_name(tmp_path, capsys):
    out = tmp_path / "rt.onnx"
    assert main(["export", "--model", "rt", "--out", str(out), "--check-data", "", "--check-pairs", "1"]) == 0
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props}["lrcfuse.architecture"] == "lrcfuse-rt"


# -- issue 12: the default model's export as an exact re-parametrisation (export format 4) ------------


def _with_awkward_parameters(model: LRCFuse, lam: float) -> LRCFuse:
    """Thresholds of both signs (a learned theta may go negative) and a chosen lambda in every stack."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for stack in (model.llrr_vi, model.llrr_ir):
            stack.theta.copy_((torch.rand(stack.theta.shape, generator=g) - 0.3) * 0.2)
            stack.lam.fill_(lam)
        model.cfpm.theta.copy_((torch.rand(model.cfpm.theta.shape, generator=g) - 0.3) * 0.2)
    return model.eval()


@pytest.mark.parametrize("lam", [0.93, -0.8, 1.1])
def test_deploy_module_computes_the_same_function(lam):
    from lrcfuse_model.inference.deploy_graph import deploy_module

    torch.manual_seed(4)
    model = _with_awkward_parameters(LRCFuse(**SMALL), lam)
    assert (model.llrr_vi.theta < 0).any() and (model.llrr_vi.theta > 0).any()
    deployed = deploy_module(model)
    assert deployed is not None
    for shape in ((1, 1, 37, 53), (1, 1, 2, 2), (2, 1, 64, 48)):
        ir, vi = torch.rand(shape), torch.rand(shape)
        with torch.no_grad():
            torch.testing.assert_close(deployed(ir, vi), model(ir, vi), rtol=0, atol=1e-5)


def test_deploy_module_declines_what_it_cannot_rescale():
    from lrcfuse_model.inference.deploy_graph import deploy_module

    model = LRCFuse(**SMALL).eval()
    with torch.no_grad():
        model.llrr_ir.theta[0, 3] = 0.0  # the codes are scaled by |theta|: a zero threshold keeps the plain graph
    assert deploy_module(model) is None
    assert deploy_module(LRCFuse(**{**SMALL, "cfpm_init": "zero"}).eval()) is None


def test_deploy_export_matches_the_plain_export(tmp_path):
    """Same function as export format 3 (``deploy=False``), without its channel Slices and Muls by lambda and eta."""
    torch.manual_seed(6)
    model = _with_awkward_parameters(LRCFuse(**SMALL), 0.97)
    new, old = export_onnx(model, tmp_path / "new.onnx"), export_onnx(model, tmp_path / "old.onnx", deploy=False)
    assert set(onnx_operators(new)) <= TENSORRT_OPS, set(onnx_operators(new)) - TENSORRT_OPS
    assert "Slice" in onnx_operators(old) and "Slice" not in onnx_operators(new)
    assert "Mul" in onnx_operators(old) and "Mul" not in onnx_operators(new)  # lambda, eta: in the weights now
    ref = TorchBackend(model)
    g = np.random.default_rng(1)
    for size in ((37, 53), (64, 80), (3, 2)):
        ir, vi = g.random(size, dtype=np.float32), g.random(size, dtype=np.float32)
        expected = ref.fuse(ir, vi)
        for path in (new, old):
            np.testing.assert_allclose(OnnxRuntimeBackend(path, threads=1).fuse(ir, vi), expected, rtol=0, atol=1e-5)


def test_shipped_weights_deploy_export_at_640x512(tmp_path):
    """The default model's export (format 4) on a 640x512 frame: within 1e-4 of PyTorch."""
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"shipped weights {DEFAULT_WEIGHTS} do not exist")
    from lrcfuse_model.inference.deploy_graph import deploy_module

    model = load_model(None)
    assert deploy_module(model) is not None  # the shipped weights take the fast export
    path = export_onnx(model, tmp_path / "lrcfuse.onnx")
    yy, xx = np.mgrid[0:512, 0:640].astype(np.float32)
    ir = (0.5 + 0.4 * np.sin(xx / 31.0) * np.cos(yy / 17.0)).astype(np.float32)
    vi = np.clip(1.0 - ir + 0.1 * np.random.default_rng(2).standard_normal(ir.shape), 0, 1).astype(np.float32)
    diff = np.abs(OnnxRuntimeBackend(path).fuse(ir, vi) - TorchBackend(model).fuse(ir, vi)).max()
    assert diff <= 1e-4, diff


def test_deploy_export_asks_onnx_runtime_not_to_spin_wait(tmp_path):
    """Format 5: the re-parametrised export carries ``lrcfuse.cpu_spin_wait=0``, the backend's session runs
    without spin-waiting and the outputs stay PyTorch's (odd size); the plain export keeps ORT's default.
    Format 6: it also names OpenVINO as its CPU runtime; the plain export names none."""
    from lrcfuse_model.inference.runtimes import CPU_RUNTIME_HINT, SPIN_WAIT_HINT

    torch.manual_seed(8)
    model = _with_awkward_parameters(LRCFuse(**SMALL), 0.9)
    new, old = export_onnx(model, tmp_path / "new.onnx"), export_onnx(model, tmp_path / "old.onnx", deploy=False)
    meta = {p.key: p.value for p in onnx.load(str(new)).metadata_props}
    assert meta == {"lrcfuse.architecture": "lrcfuse", SPIN_WAIT_HINT: "0", CPU_RUNTIME_HINT: "openvino"}
    assert {p.key for p in onnx.load(str(old)).metadata_props} == {"lrcfuse.architecture"}
    fast, plain = OnnxRuntimeBackend(new, threads=2), OnnxRuntimeBackend(old, threads=2)
    assert (fast.spin_wait, plain.spin_wait, fast.threads) == (False, True, 2)
    options = fast.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    g = np.random.default_rng(3)
    ir, vi = g.random((41, 29), dtype=np.float32), g.random((41, 29), dtype=np.float32)
    np.testing.assert_allclose(fast.fuse(ir, vi), TorchBackend(model).fuse(ir, vi), rtol=0, atol=1e-5)
