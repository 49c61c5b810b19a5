"""lrcfuse_model.inference.fuser: the shipped weights end to end, the numpy API and batch folder fusion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import lrcfuse_model
from lrcfuse_model import LRCFuse, count_parameters
from lrcfuse_model.images.preprocess import InputError, rgb_to_ycbcr, visible_to_float
from lrcfuse_model.inference.fuser import Fuser, fuse, fuse_folders
from lrcfuse_model.nn.checkpoint import DEFAULT_WEIGHTS

RNG = np.random.default_rng(0)


def gray(h, w, dtype=np.uint8):
    hi = 65536 if dtype == np.uint16 else 256
    return RNG.integers(0, hi, (h, w)).astype(dtype)


# -- shipped weights -------------------------------------------------------------------------


def test_load_pretrained():
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"shipped weights {DEFAULT_WEIGHTS} do not exist yet (being trained)")
    model = lrcfuse_model.load_pretrained()
    assert isinstance(model, LRCFuse)
    assert not model.training
    assert count_parameters(model) == count_parameters(LRCFuse())
    assert model.config == LRCFuse().config
    out = fuse(gray(33, 47), gray(33, 47))  # the default fuser uses the shipped weights
    assert out.shape == (33, 47) and out.dtype == np.uint8


# -- the numpy API ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(40, 48), (33, 47), (2, 3)])
def test_fuse_gray(tiny_model, size):
    out = fuse(gray(*size), gray(*size), model=tiny_model)
    assert out.dtype == np.uint8
    assert out.shape == size


def test_fuse_colour(tiny_model):
    vi = RNG.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    out = fuse(gray(33, 47), vi, model=tiny_model)
    assert out.dtype == np.uint8 and out.shape == (33, 47, 3)


def test_fuser_without_colour_outputs_the_fused_luma(tiny_model):
    rng = np.random.default_rng(3)
    ir = rng.integers(0, 256, (21, 30), dtype=np.uint8)
    vi = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    gray = Fuser(tiny_model, colour=False)(ir, vi)
    assert gray.shape == (21, 30) and gray.dtype == np.uint8
    # the same network input as the colour output: only the visible chroma is left out
    luma = rgb_to_ycbcr(visible_to_float(vi))[..., 0]
    y_only = Fuser(tiny_model)(ir, luma)
    np.testing.assert_array_equal(gray, y_only)


def test_fuse_uint16_thermal(tiny_model):
    out = fuse(gray(33, 47, np.uint16), gray(33, 47), model=tiny_model)
    assert out.shape == (33, 47) and out.dtype == np.uint8


def test_fuse_float_inputs(tiny_model):
    ir = RNG.random((20, 22)).astype(np.float32)
    vi = RNG.random((20, 22)).astype(np.float32)
    assert fuse(ir, vi, model=tiny_model).shape == (20, 22)


def test_fuser_matches_the_network(tiny_model):
    """The numpy API is exactly: preprocess, run the network, clamp, scale to uint8."""
    ir, vi = gray(24, 30), gray(24, 30)
    with torch.no_grad():
        y = tiny_model(
            torch.from_numpy(ir / np.float32(255))[None, None], torch.from_numpy(vi / np.float32(255))[None, None]
        )
    expected = (np.clip(y[0, 0].numpy(), 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(Fuser(tiny_model)(ir, vi), expected)


# resize_float returns a read-only array, which torch.from_numpy warns about (harmless: never written).
@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")
def test_fuser_size_mismatch(tiny_model):
    with pytest.raises(InputError, match="resize_ir"):
        fuse(gray(30, 40), gray(32, 40), model=tiny_model)
    out = fuse(gray(30, 40), gray(32, 40), model=tiny_model, data_cfg={"size_mismatch": "resize_ir"})
    assert out.shape == (32, 40)


def test_fuser_rejects_nan_output(tiny_model):
    with torch.no_grad():
        tiny_model.decoder.layers[-1].bias.fill_(float("nan"))
    with pytest.raises(InputError, match="NaN"):
        Fuser(tiny_model)(gray(10, 12), gray(10, 12))


# -- folders ---------------------------------------------------------------------------------


def test_fuse_folders_records_failures_and_keeps_going(tiny_model, tiny_dataset, tmp_path):
    (tiny_dataset / "ir" / "bad.png").write_bytes(b"definitely not a png")
    Image.fromarray(gray(40, 48)).save(tiny_dataset / "vi" / "bad.png")
    Image.fromarray(gray(40, 48)).save(tiny_dataset / "ir" / "lonely.png")
    Image.fromarray(gray(40, 48)).save(tiny_dataset / "ir" / "wrongsize.png")
    Image.fromarray(gray(41, 48)).save(tiny_dataset / "vi" / "wrongsize.png")
    out = tmp_path / "fused"
    seen = []

    def progress(items):
        seen.extend(p.name for p in items)
        return items

    report = fuse_folders(tiny_dataset / "ir", tiny_dataset / "vi", out, Fuser(tiny_model), progress=progress)

    assert sorted(r["name"] for r in report.fused) == ["p0", "p1", "p2"]
    for name in ("p0", "p1", "p2"):
        img = np.asarray(Image.open(out / f"{name}.png"))
        assert img.shape == (40, 48) and img.dtype == np.uint8
    assert not (out / "bad.png").exists() and not (out / "wrongsize.png").exists()
    failed = {r["name"]: r["error"] for r in report.failed}
    assert set(failed) == {"bad", "lonely", "wrongsize"}
    assert "not a readable image" in failed["bad"] and "bad.png" in failed["bad"]
    assert "no visible partner" in failed["lonely"]
    assert "48x40" in failed["wrongsize"] and "48x41" in failed["wrongsize"]
    assert seen == ["bad", "p0", "p1", "p2", "wrongsize"]

    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == report.to_dict()
    assert on_disk["n_fused"] == 3 and on_disk["n_failed"] == 3


def test_fuse_folders_output_matches_single_fuse(tiny_model, tiny_dataset, tmp_path):
    out = tmp_path / "fused"
    report = fuse_folders(tiny_dataset / "ir", tiny_dataset / "vi", out, Fuser(tiny_model))
    assert report.failed == []
    ir = np.asarray(Image.open(tiny_dataset / "ir" / "p1.png"))
    vi = np.asarray(Image.open(tiny_dataset / "vi" / "p1.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "p1.png")), fuse(ir, vi, model=tiny_model))
