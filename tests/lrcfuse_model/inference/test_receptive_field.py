"""lrcfuse_model.inference.receptive_field: a network's reach from its architecture, against its impulse response."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from lrcfuse_model import LRCFuse
from lrcfuse_model.inference.backends import TorchBackend
from lrcfuse_model.inference.receptive_field import TilingUnsupported, tile_geometry
from lrcfuse_model.inference.tiling import TiledBackend, tiled
from lrcfuse_model.nn.rt_model import LRCFuseRT


def impulse_reach(model: nn.Module, h: int, w: int, at: tuple[int, int]) -> tuple[int, int, int, int]:
    """How far (up, down, left, right) the output changes when one thermal pixel at ``at`` changes.

    In float64: a change that 15+ convolutions have passed on is small, and must not drown in rounding.
    """
    model = copy.deepcopy(model).double()
    rng = np.random.default_rng(7)
    ir, vi = (torch.from_numpy(rng.random((1, 1, h, w))) for _ in range(2))
    with torch.inference_mode():
        base = model(ir, vi)
        ir[0, 0][at] += 5.0
        ys, xs = np.nonzero((model(ir, vi) != base)[0, 0].numpy())
    return at[0] - ys.min(), ys.max() - at[0], at[1] - xs.min(), xs.max() - at[1]


def test_geometry_of_the_default_architecture():
    # LLRR: c0 + 4 x (c1, c2) = 9; CFPM: dictionary 1 + projection 1 + 4 x (K, K^T) = 19 on top of
    # it (the fusion branch, 11, is shallower); decoder: 3 transposed convs -> 22 pixels.
    g = tile_geometry(LRCFuse())
    assert (g.radius, g.align, g.margin, g.floats_per_pixel) == (22, 1, 22, 128.0)
    # It follows the configuration: fewer blocks, smaller reach.
    assert tile_geometry(LRCFuse(llrr_blocks=2, cfpm_stages=2)).radius == 14
    assert tile_geometry(LRCFuse(kernel_size=5)).radius == 44


def test_geometry_of_the_rt_architecture():
    # 15 cells of 8 pixels on the code path (LLRR 7, CFPM to 13, head 15), bilinear upsampling + 4 px.
    g = tile_geometry(LRCFuseRT())
    assert (g.radius, g.align, g.margin) == (8 * 15 + 4, 8, 128)


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_radius_is_the_impulse_response(which, tiny_model, shipped_default):
    model = tiny_model if which == "tiny" else shipped_default
    radius = tile_geometry(model).radius
    size = 2 * radius + 9
    reach = impulse_reach(model, size, size, (size // 2, size // 2))
    assert reach == (radius,) * 4  # the bound is exact: every pixel of it is reached, none beyond


def test_rt_radius_is_the_impulse_response_on_its_grid():
    torch.manual_seed(0)
    model = LRCFuseRT().eval()
    with torch.no_grad():  # thresholds 0 and a full-strength head: no small change is cut off on its way
        for name, p in model.named_parameters():
            if "theta" in name:
                p.zero_()
        model.head_out.weight.mul_(10.0)
    g = tile_geometry(model)
    offset = 3  # the changed pixel's place in its 8 x 8 cell
    up, down, left, right = impulse_reach(model, 320, 320, (8 * 20 + offset, 8 * 20 + offset))
    # Every pixel within `radius` of the changed pixel's cell on the grid changes, none beyond: the changed
    # cell's 15 neighbour cells each way, then bilinear upsampling (+ 4 px).
    assert (up, left) == (g.radius + offset,) * 2
    assert (down, right) == (g.radius + g.align - 1 - offset,) * 2
    rng = np.random.default_rng(1)
    ir, vi = (rng.random((3 * 128 + 64, 2 * 128 + 64), dtype=np.float32) for _ in range(2))
    whole = TorchBackend(model).fuse(ir, vi)
    assert np.abs(TiledBackend(TorchBackend(model), g, tile=64).fuse(ir, vi) - whole).max() < 1e-4


def test_an_operation_without_a_known_reach_is_refused():
    class Strided(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 1, 3, stride=2, padding=1)

        def forward(self, ir, vi):
            return nn.functional.interpolate(self.conv(torch.cat([ir, vi], 1)), scale_factor=2.0)

    with pytest.raises(TilingUnsupported, match="stride-1"):
        tile_geometry(Strided())
    backend = TorchBackend(LRCFuse(llrr_blocks=1, cfpm_stages=1, code_channels=2, feature_channels=2))
    messages: list[str] = []
    plain = tiled(backend, Strided(), "auto", "1MB", log=messages.append)
    assert plain.tile == "off" and "tiling off" in messages[0]
    with pytest.raises(TilingUnsupported):
        tiled(backend, Strided(), 64, "1MB")
