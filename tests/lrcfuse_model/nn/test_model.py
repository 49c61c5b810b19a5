"""lrcfuse_model.nn.model: the LRCFuse network."""

from __future__ import annotations

import pytest
import torch

from lrcfuse_model import LRCFuse, LRCFuseConfig, count_parameters
from lrcfuse_model.nn.model import soft_threshold

# The exact parameter count of the default configuration: any silent architecture change moves it.
DEFAULT_PARAMETERS = 178_235


def test_default_parameter_count_matches_paper():
    n = count_parameters(LRCFuse())
    assert abs(n - 180_000) <= 0.10 * 180_000  # the paper's 0.18 M
    assert n == DEFAULT_PARAMETERS


def test_count_parameters_counts_only_trainable(tiny_model_cfg):
    model = LRCFuse(**tiny_model_cfg)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total
    model.decoder.requires_grad_(False)
    frozen = sum(p.numel() for p in model.decoder.parameters())
    assert frozen > 0
    assert count_parameters(model) == total - frozen


@pytest.mark.parametrize("shape", [(1, 1, 37, 53), (2, 1, 32, 32), (1, 1, 2, 2), (1, 1, 64, 17)])
def test_output_shape_equals_input_shape(tiny_model, shape):
    ir, vi = torch.rand(shape), torch.rand(shape)
    with torch.no_grad():
        out = tiny_model(ir, vi)
    assert out.shape == shape
    assert torch.isfinite(out).all()


def test_default_model_keeps_odd_size():
    with torch.no_grad():
        out = LRCFuse().eval()(torch.rand(1, 1, 37, 53), torch.rand(1, 1, 37, 53))
    assert out.shape == (1, 1, 37, 53)


def test_samples_in_a_batch_are_independent(tiny_model):
    ir, vi = torch.rand(3, 1, 20, 24), torch.rand(3, 1, 20, 24)
    with torch.no_grad():
        batched = tiny_model(ir, vi)
        single = tiny_model(ir[1:2], vi[1:2])
    torch.testing.assert_close(batched[1:2], single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "change",
    [
        {"code_channels": 8},
        {"feature_channels": 8},
        {"llrr_blocks": 3},
        {"cfpm_stages": 3},
        {"decoder_channels": [8, 4]},
        {"kernel_size": 5},
        {"cfpm_init": "zero"},
    ],
)
def test_every_size_is_a_config_value(tiny_model_cfg, change):
    base = count_parameters(LRCFuse(**tiny_model_cfg))
    changed = LRCFuse(**{**tiny_model_cfg, **change})
    assert count_parameters(changed) != base
    for key, value in change.items():
        assert getattr(changed.config, key) == value


def test_config_mapping_and_overrides(tiny_model_cfg):
    from_mapping = LRCFuse(tiny_model_cfg)
    assert from_mapping.config == LRCFuseConfig(**tiny_model_cfg)
    overridden = LRCFuse(LRCFuseConfig(**tiny_model_cfg), code_channels=6)
    assert overridden.config.code_channels == 6
    assert overridden.config.feature_channels == tiny_model_cfg["feature_channels"]
    assert LRCFuseConfig.from_dict(overridden.config.to_dict()) == overridden.config


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_torch_jit_trace_matches_eager(tiny_model):
    example = (torch.rand(1, 1, 24, 20), torch.rand(1, 1, 24, 20))
    with torch.no_grad():
        traced = torch.jit.trace(tiny_model, example)
        # No data-dependent control flow: the trace generalises to another size.
        ir, vi = torch.rand(2, 1, 31, 45), torch.rand(2, 1, 31, 45)
        torch.testing.assert_close(traced(ir, vi), tiny_model(ir, vi), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(traced(*example), tiny_model(*example), rtol=1e-5, atol=1e-6)


def test_soft_threshold_matches_definition():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 3)
    theta = torch.rand(1, 5, 1, 1) * 0.8
    expected = torch.sign(x) * torch.clamp(x.abs() - theta, min=0.0)
    torch.testing.assert_close(soft_threshold(x, theta), expected)
    # Values inside [-theta, theta] are exactly zero; outside they shrink by theta.
    assert torch.all(soft_threshold(x, theta)[x.abs() <= theta] == 0)


def test_gradients_reach_every_parameter(tiny_model):
    model = tiny_model.train()
    out = model(torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16))
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"cfpm_init": "random"}, "cfpm_init must be 'projection' or 'zero'"),
        ({"decoder_channels": [8]}, "decoder_channels"),
        ({"code_channels": 0}, "code_channels must be >= 1"),
        ({"llrr_blocks": 0}, "llrr_blocks must be >= 1"),
        ({"widht": 3}, "unknown model config keys"),
    ],
)
def test_invalid_config_raises_value_error(tiny_model_cfg, change, message):
    with pytest.raises(ValueError, match=message):
        LRCFuse(**{**tiny_model_cfg, **change})


def test_soft_threshold_forms_used_by_the_export():
    """The identities behind export format 4 (lrcfuse_model.inference.deploy_graph.DeployLRCFuse).

    For theta >= 0 today's ``relu(x - t) + min(x + t, 0)`` is ``x - clamp(x, -t, t)`` bit for bit; for a
    negative (learned) theta it is ``x + clamp(x, t, -t)`` (slope 2 between the bounds), equal up to one
    rounding. Scaling by s > 0 commutes: ``h_t(s * v) = s * h_{t/s}(v)`` up to rounding.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 9, 11, generator=g) * 0.1
    theta = (torch.rand(1, 64, 1, 1, generator=g) - 0.3) * 0.1
    positive = theta.abs()
    assert torch.equal(soft_threshold(x, positive), x - torch.clamp(x, -positive, positive))
    negative_form = x - torch.sign(theta) * torch.clamp(x, -theta.abs(), theta.abs())
    torch.testing.assert_close(soft_threshold(x, theta), negative_form, rtol=0, atol=1e-7)
    s = theta.abs() * 0.93**3
    torch.testing.assert_close(soft_threshold(x, theta), s * soft_threshold(x / s, theta / s), rtol=1e-6, atol=1e-8)
