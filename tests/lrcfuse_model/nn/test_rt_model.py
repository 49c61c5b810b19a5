"""lrcfuse_model.nn.rt_model: LRCFuse-RT, and how the shipped models are named and loaded."""

from __future__ import annotations

import pytest
import torch

from lrcfuse_model import count_parameters, load_model, load_pretrained, save_weights
from lrcfuse_model.nn.checkpoint import RT_WEIGHTS, SHIPPED_MODELS, build_model, resolve_weights
from lrcfuse_model.nn.model import LRCFuse
from lrcfuse_model.nn.rt_model import LRCFuseRT, LRCFuseRTConfig

TINY_RT = {"code_channels": 2, "llrr_blocks": 1, "feature_channels": 4, "cfpm_stages": 1, "head_channels": 4}


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (3, 2), (64, 48)])
@pytest.mark.parametrize("scale", [1, 4, 8])
def test_any_frame_size_gives_the_same_size(size, scale):
    model = LRCFuseRT(scale=scale, **TINY_RT).eval()
    ir, vi = torch.rand(1, 1, *size), torch.rand(1, 1, *size)
    with torch.no_grad():
        out = model(ir, vi)
    assert out.shape == (1, 1, *size)
    assert torch.isfinite(out).all()


def test_starts_near_the_pixel_max():
    """The head starts at A = 1 (the pixel max), B = C = D = 0, plus small learned perturbations."""
    torch.manual_seed(0)
    model = LRCFuseRT(**TINY_RT).eval()
    ir, vi = torch.rand(1, 1, 40, 48), torch.rand(1, 1, 40, 48)
    with torch.no_grad():
        out = model(ir, vi)
    assert (out - torch.maximum(ir, vi)).abs().mean() < 0.1


def test_full_resolution_detail_reaches_the_output():
    """Coefficient maps are smooth, but the sources enter pixel by pixel: a one-pixel dot in the
    thermal image shows in the output at that pixel."""
    model = LRCFuseRT(**TINY_RT).eval()
    ir, vi = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    ir[0, 0, 10, 13] = 1.0
    with torch.no_grad():
        out = model(ir, vi)[0, 0]
    assert out[10, 13] > out[10, 15] + 0.5


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="rt_model.scale"):
        LRCFuseRT(scale=0)
    with pytest.raises(ValueError, match="unknown rt_model config keys"):
        LRCFuseRTConfig.from_dict({"scales": 4})


def test_save_and_load_keep_the_architecture(tmp_path):
    model = LRCFuseRT(**TINY_RT)
    path = save_weights(model, tmp_path / "rt.pt", meta={"note": "test"})
    blob = torch.load(path, weights_only=True)
    assert blob["architecture"] == "lrcfuse-rt"
    loaded = load_model(path)
    assert isinstance(loaded, LRCFuseRT) and not loaded.training
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_unknown_architecture_is_a_clear_error(tmp_path):
    path = save_weights(LRCFuseRT(**TINY_RT), tmp_path / "x.pt")
    blob = torch.load(path, weights_only=True)
    blob["architecture"] = "lrcfuse-xl"
    torch.save(blob, path)
    with pytest.raises(ValueError, match="unknown architecture 'lrcfuse-xl'"):
        load_model(path)


def test_shipped_models_by_name():
    assert set(SHIPPED_MODELS) == {"default", "rt"}
    assert resolve_weights("rt") == RT_WEIGHTS and resolve_weights("") == SHIPPED_MODELS["default"]
    rt = load_pretrained("rt")
    assert isinstance(rt, LRCFuseRT) and not rt.training
    assert count_parameters(rt) < 20_000
    assert isinstance(load_pretrained(), LRCFuse)
    assert isinstance(load_model("rt"), LRCFuseRT)
    with torch.no_grad():
        out = rt(torch.rand(1, 1, 48, 64), torch.rand(1, 1, 48, 64))
    assert torch.isfinite(out).all()


def test_unknown_model_names_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a shipped model"):
        resolve_weights("fast")
    with pytest.raises(ValueError, match="unknown shipped model 'fast'"):
        load_pretrained("fast")
    with pytest.raises(FileNotFoundError):
        resolve_weights(tmp_path / "missing.pt")


def test_build_model_takes_the_section_of_its_architecture():
    cfg = {"model": {"code_channels": 4, "feature_channels": 4}, "rt_model": dict(TINY_RT, scale=2)}
    assert isinstance(build_model("lrcfuse", cfg), LRCFuse)
    rt = build_model("lrcfuse-rt", cfg)
    assert isinstance(rt, LRCFuseRT) and rt.config.scale == 2
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("unet", cfg)
