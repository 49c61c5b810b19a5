"""lrcfuse_model.nn.loss: the five-term fusion loss."""

from __future__ import annotations

import math

import pytest
import torch

from lrcfuse_model.config import load_defaults
from lrcfuse_model.nn.feature_nets import YOLOv5Features, build_feature_net
from lrcfuse_model.nn.loss import (
    TERMS,
    FusionLoss,
    gram,
    hot_mask,
    sobel_magnitude,
    sobel_xy,
    strongest_gradient,
)


def loss_cfg(**changes) -> dict:
    cfg = dict(load_defaults()["loss"])
    cfg.update(changes)
    return cfg


@pytest.fixture(scope="module")
def yolo_net(yolov5n_weights):
    return build_feature_net("yolov5n", yolov5n_weights)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return tuple(torch.rand(2, 1, 64, 64, generator=g) for _ in range(3))  # fused, ir, vi


def weighted_total(cfg: dict, terms: dict) -> float:
    return (
        cfg["pixel"] * float(terms["pixel"])
        + cfg["shallow"] * float(terms["shallow"])
        + float(terms["middle"])
        + cfg["deep"] * float(terms["deep"])
        + cfg["sobel"] * float(terms["sobel"])
        + cfg["hot"] * float(terms["hot"])
    )


def test_fused_equal_visible_zeroes_pixel_and_shallow(yolo_net, images):
    _, ir, vi = images
    loss = FusionLoss(loss_cfg(pixel_target="vi"), feature_net=yolo_net)
    _, terms = loss(vi.clone(), ir, vi)
    assert float(terms["pixel"]) == 0.0
    assert float(terms["shallow"]) == pytest.approx(0.0, abs=1e-12)
    assert float(terms["middle"]) > 0  # the middle target mixes in the infrared features


def test_fused_equal_infrared_zeroes_deep(yolo_net, images):
    _, ir, vi = images
    _, terms = FusionLoss(loss_cfg(sobel_target="ir"), feature_net=yolo_net)(ir.clone(), ir, vi)
    assert float(terms["deep"]) == pytest.approx(0.0, abs=1e-10)
    assert float(terms["sobel"]) == 0.0  # the paper's target is the infrared gradient


def test_pixel_target_max_is_the_brighter_source(images):
    """With pixel_target 'max', max(ir, vi) itself has zero pixel loss and the visible image does not."""
    _, ir, vi = images
    loss = FusionLoss(loss_cfg(feature_net="none", pixel_target="max"))
    _, at_max = loss(torch.maximum(ir, vi), ir, vi)
    _, at_vi = loss(vi.clone(), ir, vi)
    assert float(at_max["pixel"]) == 0.0
    assert float(at_vi["pixel"]) > 0.0


def test_all_terms_present_finite_and_weighted(yolo_net, images):
    cfg = loss_cfg()
    total, terms = FusionLoss(cfg, feature_net=yolo_net)(*images)
    assert tuple(terms) == TERMS == ("pixel", "shallow", "middle", "deep", "sobel", "hot")
    for name, value in terms.items():
        assert value.ndim == 0 and math.isfinite(float(value)), name
        assert float(value) > 0 or (name == "hot" and cfg["hot"] == 0), name  # random images: every term is active
    assert float(total) == pytest.approx(weighted_total(cfg, terms), rel=1e-5)


def test_loss_builds_its_feature_net_from_config(yolov5n_weights):
    loss = FusionLoss(loss_cfg(feature_weights=str(yolov5n_weights)))
    assert isinstance(loss.features, YOLOv5Features)


def test_gradients_flow_to_fused_not_to_the_frozen_net(yolo_net, images):
    fused, ir, vi = images
    fused = fused.clone().requires_grad_(True)
    total, _ = FusionLoss(loss_cfg(), feature_net=yolo_net)(fused, ir, vi)
    total.backward()
    assert fused.grad is not None and torch.isfinite(fused.grad).all() and fused.grad.abs().sum() > 0
    assert all(p.grad is None for p in yolo_net.parameters())


def test_each_perceptual_term_has_a_gradient(yolo_net, images):
    fused, ir, vi = images
    loss = FusionLoss(loss_cfg(), feature_net=yolo_net)
    for name in ("shallow", "middle", "deep"):
        x = fused.clone().requires_grad_(True)
        _, terms = loss(x, ir, vi)
        terms[name].backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, name


def test_feature_net_none_gives_zero_perceptual_terms(images):
    cfg = loss_cfg(feature_net="none")
    loss = FusionLoss(cfg)
    assert loss.features is None
    fused = images[0].clone().requires_grad_(True)
    total, terms = loss(fused, images[1], images[2])
    for name in ("shallow", "middle", "deep"):
        assert float(terms[name]) == 0.0
    total.backward()
    total, terms = total.detach(), {k: v.detach() for k, v in terms.items()}
    assert float(terms["pixel"]) > 0 and float(terms["sobel"]) > 0
    assert float(total) == pytest.approx(cfg["pixel"] * float(terms["pixel"]) + cfg["sobel"] * float(terms["sobel"]))
    assert fused.grad.abs().sum() > 0


def test_sobel_of_constant_is_zero():
    img = torch.full((1, 1, 9, 11), 0.7)
    mag = sobel_magnitude(img)
    assert mag.shape == img.shape
    assert float(mag.max()) < 1e-6  # borders included (replicate padding); float rounding only


def test_sobel_of_vertical_step_edge():
    img = torch.zeros(1, 1, 10, 16)
    img[..., 8:] = 1.0
    mag = sobel_magnitude(img)
    assert mag.shape == img.shape
    # |Gx| = 1 + 2 + 1 on both columns next to the step, Gy = 0; nothing elsewhere.
    assert torch.all(mag[..., 7] == 4.0)
    assert torch.all(mag[..., 8] == 4.0)
    assert torch.count_nonzero(mag[..., :7]) == 0
    assert torch.count_nonzero(mag[..., 9:]) == 0


def test_sobel_is_symmetric_in_direction():
    img = torch.zeros(1, 1, 16, 10)
    img[..., 8:, :] = 1.0  # horizontal step edge
    assert torch.all(sobel_magnitude(img)[..., 7, :] == 4.0)


def test_sobel_target_max_uses_visible_edges():
    """Flat infrared, edgy visible: 'ir' penalises the visible edges in the fusion, 'max' keeps them."""
    ir = torch.full((1, 1, 16, 16), 0.5)
    vi = torch.zeros(1, 1, 16, 16)
    vi[..., 8:] = 1.0
    _, ir_terms = FusionLoss(loss_cfg(feature_net="none", sobel_target="ir"))(vi.clone(), ir, vi)
    _, max_terms = FusionLoss(loss_cfg(feature_net="none", sobel_target="max"))(vi.clone(), ir, vi)
    assert float(ir_terms["sobel"]) > 0
    assert float(max_terms["sobel"]) == 0.0


def test_sobel_target_max_is_at_least_ir(images):
    """max(|grad ir|, |grad vi|) >= |grad ir|, so a flat fusion is penalised at least as much."""
    _, ir, vi = images
    flat = torch.zeros_like(ir)
    _, ir_terms = FusionLoss(loss_cfg(feature_net="none", sobel_target="ir"))(flat, ir, vi)
    _, max_terms = FusionLoss(loss_cfg(feature_net="none", sobel_target="max"))(flat, ir, vi)
    assert float(max_terms["sobel"]) > float(ir_terms["sobel"]) > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sobel_target": "vi"}, "sobel_target must be 'ir', 'max' or 'strongest'"),
        ({"pixel_norm": "l3"}, "pixel_norm must be 'l2' or 'l1'"),
        ({"sobel_norm": "huber"}, "sobel_norm must be 'l2' or 'l1'"),
        ({"pixel_pool": 0}, "pixel_pool must be >= 1"),
        ({"pixel_target": "ir"}, "pixel_target must be 'vi' or 'max'"),
        ({"middle_betas": [1.0]}, "middle_betas"),
    ],
)
def test_bad_loss_config_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        FusionLoss(loss_cfg(feature_net="none", **change))


def test_gram_matrix():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 2
    torch.testing.assert_close(gram(f), expected)
    # Independent of the number of positions for a repeated pattern.
    torch.testing.assert_close(gram(f.repeat(1, 1, 3, 1)), expected)


def rt_loss(**changes) -> FusionLoss:
    from lrcfuse_model.config import resolve

    return FusionLoss({**resolve("lrcfuse_model/cfg/rt.yaml")["loss"], **changes})


def test_strongest_gradient_keeps_sign_and_the_larger_source():
    ir = torch.zeros(1, 1, 8, 8)
    vi = torch.zeros(1, 1, 8, 8)
    ir[..., :, 4:] = 1.0  # a rising step (left to right) in the thermal image
    vi[..., :, 2:] = -0.3  # a weaker falling step elsewhere in the visible image
    g = strongest_gradient(ir, vi)
    gx_ir, gx_vi = sobel_xy(ir)[:, 0], sobel_xy(vi)[:, 0]
    assert torch.equal(g[:, 0, :, 3], gx_ir[:, :, 3]) and (g[:, 0, :, 3] > 0).all()
    assert torch.equal(g[:, 0, :, 1], gx_vi[:, :, 1]) and (g[:, 0, :, 1] < 0).all()


def test_rt_recipe_ranks_the_pixel_max_over_the_average_and_the_sources():
    """The optimum of the LRCFuse-RT loss is a salient fusion: on two textured sources with a hot target,
    the pixel max scores better than the average, the visible image and the infrared image."""
    g = torch.Generator().manual_seed(1)
    vi = 0.4 + 0.2 * torch.rand(4, 1, 64, 64, generator=g)
    ir = 0.2 + 0.05 * torch.rand(4, 1, 64, 64, generator=g)
    ir[..., 20:40, 24:34] = 0.9  # a hot target
    loss = rt_loss()
    score = {
        name: float(loss(img, ir, vi)[0])
        for name, img in {"max": torch.maximum(ir, vi), "average": (ir + vi) / 2, "vi": vi, "ir": ir}.items()
    }
    assert score["max"] < min(score["average"], score["vi"], score["ir"]), score


def test_pixel_pool_compares_levels_only():
    """With pixel_pool, texture that averages out in a cell costs nothing in the pixel term."""
    target = torch.full((1, 1, 16, 16), 0.5)
    checker = target + 0.1 * (torch.arange(16).view(1, 16) % 2 * 2 - 1).float().expand(16, 16)
    pooled = rt_loss(pixel_pool=4)
    full = rt_loss(pixel_pool=1)
    zeros = torch.zeros_like(target)
    assert float(pooled(checker, zeros, target)[1]["pixel"]) < 1e-7
    assert float(full(checker, zeros, target)[1]["pixel"]) > 0.005  # 0.1 squared


def test_hot_term_holds_the_hottest_infrared_pixels_to_the_brighter_source(images):
    _, ir, vi = images
    loss = FusionLoss(loss_cfg(feature_net="none", hot=2.0, hot_quantile=0.9))
    brightest = torch.maximum(ir, vi)
    _, exact = loss(brightest.clone(), ir, vi)
    assert float(exact["hot"]) == 0.0
    hot = hot_mask(ir, 0.9)
    assert 0.05 < float(hot.float().mean()) < 0.2  # about a tenth of each image
    dimmed_elsewhere = torch.where(hot, brightest, brightest * 0.5)
    _, outside = loss(dimmed_elsewhere, ir, vi)
    assert float(outside["hot"]) == 0.0  # only the hot pixels count
    total, dimmed = loss(torch.where(hot, brightest - 0.1, brightest), ir, vi)
    assert float(dimmed["hot"]) == pytest.approx(0.1, abs=1e-5)
    assert float(total) == pytest.approx(weighted_total(loss.cfg, dimmed), rel=1e-5)


@pytest.mark.parametrize("quantile", [0.0, 1.0, 1.5])
def test_hot_quantile_outside_the_open_unit_interval_is_refused(quantile):
    with pytest.raises(ValueError, match="hot_quantile"):
        FusionLoss(loss_cfg(feature_net="none", hot_quantile=quantile))
