"""A fusion network's receptive field, from its architecture: how far tiles must overlap to reproduce the frame.

:func:`tile_geometry` traces the PyTorch model (``torch.fx``) and runs it on a small probe frame,
giving every image-like tensor a grid (input pixels per cell) and a radius (cells within which an
inner tile edge can change a value): a stride-1 "same" convolution adds ``dilation * (k // 2)``,
element-wise operations take the largest of their inputs, a pooling by ``s`` moves to a grid of
``s``-pixel cells (tiles must then start on that grid), an upsampling back to pixels turns ``r``
cells into ``s * r + s // 2`` pixels (bilinear, align_corners False), explicit pads and crops move
the edge. An operation it does not know raises :class:`TilingUnsupported`: it never guesses.
Used by :mod:`lrcfuse_model.inference.tiling`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

PROBE_SIZE = 64  # the geometry is traced on a PROBE_SIZE x PROBE_SIZE frame (a multiple of every pooling)

_POINTWISE_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pow,
    torch.add, torch.sub, torch.mul, torch.div, torch.relu, torch.clamp, torch.maximum, torch.minimum,
    torch.sigmoid, torch.tanh, torch.abs, torch.sign, torch.where, torch.exp, torch.zeros_like, torch.ones_like,
    F.relu, F.leaky_relu, F.sigmoid, F.tanh, F.gelu, F.silu,
}  # fmt: skip
_POINTWISE_METHODS = {
    "add", "sub", "mul", "div", "clamp", "relu", "sigmoid", "tanh", "abs", "neg", "expand", "expand_as",
    "contiguous", "float", "to", "type_as", "clone",
}  # fmt: skip
_POINTWISE_MODULES = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.GELU, nn.SiLU, nn.BatchNorm2d)


class TilingUnsupported(ValueError):
    """The model holds an operation whose receptive field :func:`tile_geometry` cannot bound."""


@dataclass(frozen=True)
class TileGeometry:
    """What tiling needs to know about a network.

    ``radius``: receptive radius in pixels (an output pixel depends on inputs at most this far away,
    per axis). ``align``: tiles start at multiples of it (the coarsest pooling grid; 1 = anywhere).
    ``floats_per_pixel``: floats per input pixel of the widest activation (memory estimate).
    """

    radius: int
    align: int = 1
    floats_per_pixel: float = 1.0

    @property
    def margin(self) -> int:
        """The overlap each tile reads beyond its core: the radius rounded up to the alignment."""
        return -(-self.radius // self.align) * self.align


@dataclass
class _Geo:
    stride: int  # input pixels per cell of this tensor's grid; 0 = a constant (a parameter), on any grid
    radius: int  # cells of this grid within which an interior tile edge makes a value inexact


class _GeometryWalk(fx.Interpreter):
    """Runs the traced model on a probe frame and gives every 4-D tensor its :class:`_Geo`."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.geo: dict[fx.Node, _Geo] = {}
        self.strides: set[int] = {1}
        self.floats_per_pixel = 0.0

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        if isinstance(value, torch.Tensor) and value.dim() == 4:
            geo = self._geometry(n, value)
            self.geo[n] = geo
            if geo.stride:
                self.strides.add(geo.stride)
                self.floats_per_pixel = max(self.floats_per_pixel, value.shape[1] / geo.stride**2)
        return value

    def _inputs(self, n: fx.Node) -> list[_Geo]:
        """The grids of ``n``'s image-like inputs (constants left out)."""
        return [self.geo[a] for a in n.all_input_nodes if a in self.geo and self.geo[a].stride]

    def _same_grid(self, n: fx.Node) -> _Geo:
        inputs = self._inputs(n)
        if not inputs:
            return _Geo(0, 0)  # computed from constants only
        if len({g.stride for g in inputs}) > 1:
            raise TilingUnsupported(f"operation {n.format_node()} combines tensors of different resolutions")
        return _Geo(inputs[0].stride, max(g.radius for g in inputs))

    def _geometry(self, n: fx.Node, value: torch.Tensor) -> _Geo:
        if n.op == "placeholder":
            return _Geo(1, 0)
        if n.op == "output":
            return self._same_grid(n)
        if n.op == "get_attr" or not self._inputs(n):
            return _Geo(0, 0)
        target = self.module.get_submodule(n.target) if n.op == "call_module" else n.target
        if isinstance(target, (nn.Conv2d, nn.ConvTranspose2d)):
            return self._conv(n, target, value)
        if isinstance(target, _POINTWISE_MODULES) or target in _POINTWISE_FUNCTIONS:
            return self._same_grid(n)
        if n.op == "call_method" and target in _POINTWISE_METHODS:
            return self._same_grid(n)
        if target is torch.cat:
            dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
            if dim not in (0, 1, -3, -4):
                raise TilingUnsupported(f"{n.format_node()} concatenates along a spatial axis")
            return self._same_grid(n)
        if target is operator.getitem:
            return self._getitem(n, value)
        if target is F.pad:
            return self._pad(n)
        if target in (F.avg_pool2d, F.max_pool2d) or isinstance(target, (nn.AvgPool2d, nn.MaxPool2d)):
            return self._pool(n, target)
        if target is F.interpolate:
            return self._upsample(n, value)
        raise TilingUnsupported(f"no receptive field known for {n.format_node()}")

    def _conv(self, n: fx.Node, conv: nn.Module, value: torch.Tensor) -> _Geo:
        (geo,) = self._inputs(n)
        source = self.env[n.args[0]]
        if tuple(conv.stride) != (1, 1) or value.shape[-2:] != source.shape[-2:]:
            raise TilingUnsupported(f"{n.target}: only stride-1 'same' convolutions tile (got {conv})")
        reach = max(d * (k - 1) // 2 for d, k in zip(conv.dilation, conv.kernel_size))
        return _Geo(geo.stride, geo.radius + reach)

    def _getitem(self, n: fx.Node, value: torch.Tensor) -> _Geo:
        (geo,) = self._inputs(n)
        source = self.env[n.args[0]]
        if value.shape[-2:] == source.shape[-2:]:
            return geo  # batch or channel selection
        index = n.args[1] if isinstance(n.args[1], tuple) else (n.args[1],)
        crops = []
        for axis in (2, 3):
            item = index[axis] if len(index) > axis else slice(None)
            if not isinstance(item, slice) or item.step not in (None, 1):
                raise TilingUnsupported(f"{n.format_node()}: only plain spatial crops tile")
            start, stop = item.start or 0, item.stop
            if start < 0 or (stop is not None and stop > 0):
                raise TilingUnsupported(f"{n.format_node()}: only crops counted from both edges tile")
            crops += [start, -stop if stop is not None else 0]
        return _Geo(geo.stride, max(geo.radius - min(crops), 0))

    def _pad(self, n: fx.Node) -> _Geo:
        (geo,) = self._inputs(n)
        args, _ = self.fetch_args_kwargs_from_env(n)  # the amounts as run on the probe
        pads = [int(p) for p in args[1]]
        # A pad moves the tile edge outwards. (A pad that completes a partial pooling cell at the
        # bottom/right is 0 on the aligned probe, as on every aligned inner tile edge.)
        return _Geo(geo.stride, geo.radius + max(pads, default=0))

    def _pool(self, n: fx.Node, target: Any) -> _Geo:
        (geo,) = self._inputs(n)
        if isinstance(target, nn.Module):
            k, st, pad = target.kernel_size, target.stride, target.padding
        else:
            params = dict(zip(("kernel_size", "stride", "padding"), n.args[1:]), **n.kwargs)
            k, st, pad = params["kernel_size"], params.get("stride") or params["kernel_size"], params.get("padding", 0)
        k, st, pad = (v if isinstance(v, int) else v[0] for v in (k, st, pad))
        if pad:
            raise TilingUnsupported(f"{n.format_node()}: pooling with padding does not tile")
        # Cell j covers grid cells j*st .. j*st+k-1: exact once those are at least `radius` in.
        return _Geo(geo.stride * st, -(-(geo.radius + max(k - st, 0)) // st))

    def _upsample(self, n: fx.Node, value: torch.Tensor) -> _Geo:
        (geo,) = self._inputs(n)
        source = self.env[n.args[0]]
        factor = value.shape[-1] // source.shape[-1]
        mode = n.kwargs.get("mode", n.args[3] if len(n.args) > 3 else "nearest")
        if value.shape[-1] != factor * source.shape[-1] or value.shape[-2] != factor * source.shape[-2]:
            raise TilingUnsupported(f"{n.format_node()}: only integer upsampling tiles")
        if geo.stride % factor or mode not in ("nearest", "bilinear") or n.kwargs.get("align_corners"):
            raise TilingUnsupported(
                f"{n.format_node()}: only nearest / bilinear (align_corners=False) upsampling tiles"
            )
        # Bilinear: output pixel y reads cells floor(src), floor(src)+1 with src = (y + 0.5) / f - 0.5.
        extra = factor // 2 if mode == "bilinear" else 0
        return _Geo(geo.stride // factor, factor * geo.radius + extra)


def tile_geometry(model: nn.Module) -> TileGeometry:
    """The receptive radius, tile alignment and widest activation of a PyTorch fusion network ``forward(ir, vi)``.

    Computed from the architecture (see the module doc), on a ``PROBE_SIZE`` square frame on the CPU.
    Raises :class:`TilingUnsupported` for an operation whose reach it cannot bound.
    """
    try:
        traced = fx.symbolic_trace(model)
    except Exception as exc:  # the tracer's own error says which construct
        raise TilingUnsupported(f"cannot trace {type(model).__name__} to find its receptive field: {exc}") from None
    walk = _GeometryWalk(traced)
    device = next(model.parameters()).device
    probe = torch.zeros(1, 1, PROBE_SIZE, PROBE_SIZE, device=device)
    with torch.inference_mode():
        walk.run(probe, probe)
    out = next(n for n in traced.graph.nodes if n.op == "output").args[0]
    geo = walk.geo[out]
    if geo.stride != 1:
        raise TilingUnsupported(f"{type(model).__name__}'s output is not at the input resolution")
    return TileGeometry(radius=geo.radius, align=math.lcm(*walk.strides), floats_per_pixel=walk.floats_per_pixel)
