"""The YOLOv5 (v6.x, anchor-based) network, built from its layer list, in plain PyTorch.

One implementation serves two uses: its first stages are the pretrained feature network of the
fusion loss (:mod:`lrcfuse_model.nn.feature_nets`), and the whole network is the detector that runs
on fused images. It reads the tensors of an original ``ultralytics/yolov5`` checkpoint saved as
plain tensors (``{'state_dict': ..., 'meta': ...}``, ``meta['yaml']`` being the model's layer
list), so no code from that repository is imported or unpickled.

Module names mirror the original checkpoint (``model.<i>.cv1.conv.weight`` ...) so its state
dict loads with ``strict=True``: a missing or mis-shaped tensor is an error, never a silent
random layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x`` (how YOLOv5 scales widths)."""
    return int(math.ceil(x / divisor) * divisor)


def autopad(k: int, p: int | None = None) -> int:
    return k // 2 if p is None else p


class Conv(nn.Module):
    """Conv2d + BatchNorm + SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p), bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0) -> None:
        super().__init__()
        hidden = int(c2 * e)
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden, c2, 3, 1)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with three convolutions."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        hidden = c2 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(c1, hidden, 1, 1)
        self.cv3 = Conv(2 * hidden, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv(hidden * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.d = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.d)


class Detect(nn.Module):
    """Anchor-based detection head.

    In training mode it returns the raw per-level maps; in eval mode it also decodes them into
    ``N x boxes x (4 + 1 + nc)`` rows of (cx, cy, w, h) in input pixels, objectness and class
    scores (after sigmoid), as YOLOv5 v6 does.
    """

    def __init__(self, nc: int, anchors: Sequence[Sequence[float]], ch: Sequence[int]) -> None:
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2))
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)

    def forward(self, xs: list[torch.Tensor]):
        raw, decoded = [], []
        for i in range(self.nl):
            x = self.m[i](xs[i])
            n, _, h, w = x.shape
            x = x.view(n, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous()
            raw.append(x)
            if not self.training:
                yv, xv = torch.meshgrid(
                    torch.arange(h, device=x.device, dtype=x.dtype),
                    torch.arange(w, device=x.device, dtype=x.dtype),
                    indexing="ij",
                )
                grid = torch.stack((xv, yv), 2).view(1, 1, h, w, 2) - 0.5
                # `anchors` are stored in grid units (pixels / stride), as in the checkpoints.
                anchor_grid = (self.anchors[i] * self.stride[i]).view(1, self.na, 1, 1, 2)
                y = x.sigmoid()
                xy = (y[..., :2] * 2 + grid) * self.stride[i]
                wh = (y[..., 2:4] * 2) ** 2 * anchor_grid
                decoded.append(torch.cat((xy, wh, y[..., 4:]), -1).view(n, -1, self.no))
        if self.training:
            return raw
        return torch.cat(decoded, 1), raw


_MODULES = {"Conv": Conv, "C3": C3, "SPPF": SPPF, "Concat": Concat, "Detect": Detect, "nn.Upsample": nn.Upsample}


class YOLOv5(nn.Module):
    """A YOLOv5 network built from the ``yaml`` layer list of a checkpoint.

    ``upto`` builds only layers ``0..upto`` (the backbone stages used as a feature network);
    ``forward_features(x, layers)`` returns the outputs of the requested layers.
    """

    def __init__(self, spec: dict[str, Any], upto: int | None = None) -> None:
        super().__init__()
        self.spec = spec
        nc = int(spec["nc"])
        gd, gw = float(spec["depth_multiple"]), float(spec["width_multiple"])
        anchors = spec["anchors"]
        channels = [int(spec.get("ch", 3))]
        layers: list[nn.Module] = []
        self.sources: list[int | list[int]] = []
        rows = list(spec["backbone"]) + list(spec["head"])
        if upto is not None:
            rows = rows[: upto + 1]
        for i, (src, number, name, args) in enumerate(rows):
            if name not in _MODULES:
                raise ValueError(f"YOLOv5 layer {i}: unsupported module {name!r}; known: {sorted(_MODULES)}")
            args = [nc if a == "nc" else anchors if a == "anchors" else a for a in args]
            n = max(round(number * gd), 1) if number > 1 else number
            cin = channels[src] if isinstance(src, int) else None
            if name in ("Conv", "C3", "SPPF"):
                cout = make_divisible(args[0] * gw, 8) if args[0] != nc else args[0]
                extra = list(args[1:])
                if name == "C3":
                    module = C3(cin, cout, n, *extra)
                else:
                    module = _MODULES[name](cin, cout, *extra)
            elif name == "Concat":
                cout = sum(channels[s] for s in src)
                module = Concat(*args)
            elif name == "Detect":
                det_anchors = args[1]
                if isinstance(det_anchors, int):
                    raise ValueError("Detect with a number of anchors (not a list) is not supported")
                module = Detect(nc, det_anchors, [channels[s] for s in src])
                cout = channels[-1]
            else:  # nn.Upsample
                size, scale, mode = args
                module = nn.Upsample(size=None if size in (None, "None") else size, scale_factor=scale, mode=mode)
                cout = channels[-1]
            layers.append(module)
            self.sources.append(src)
            if i == 0:
                channels = []
            channels.append(cout)
        self.model = nn.Sequential(*layers)
        self.channels = channels
        self.names: list[str] = []

    def forward_features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Outputs of the given layer indices (run only as far as the deepest one)."""
        wanted = set(layers)
        outputs: list[torch.Tensor | None] = []
        last = max(layers)
        for i, module in enumerate(self.model):
            src = self.sources[i]
            if isinstance(src, int):
                inp = x if src == -1 else outputs[src]
            else:
                inp = [x if s == -1 else outputs[s] for s in src]
            x = module(inp)
            keep = i in wanted or any(i in (s if isinstance(s, list) else [s]) for s in self.sources[i + 1 :])
            outputs.append(x if keep else None)
            if i == last:
                break
        return [outputs[i] for i in layers]

    def forward(self, x: torch.Tensor):
        detect_index = len(self.model) - 1
        return self.forward_features(x, [detect_index])[0]


def load_checkpoint_tensors(path: str | Path, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a ``{'state_dict', 'meta'}`` file of plain tensors; clear errors when it is not one.

    ``meta`` (e.g. read from a ``*_meta.json`` beside the weights) completes or overrides the file's own meta,
    so a bare ``{'state_dict': ...}`` file loads when its layer list comes separately.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"YOLOv5 weight file {path} does not exist (expected a torch file holding "
            "{'state_dict': {...}, 'meta': {'yaml': ..., 'names': ...}})"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle of arbitrary code (e.g. an original yolov5 .pt) lands here
        raise ValueError(
            f"{path} is not a plain-tensor YOLOv5 file ({exc.__class__.__name__}: {exc}). Expected a file "
            "saved as {'state_dict': model.state_dict(), 'meta': {'yaml': layer_list, 'names': [...]}}."
        ) from exc
    if isinstance(blob, dict) and "state_dict" in blob and meta:
        blob["meta"] = {**dict(blob.get("meta") or {}), **dict(meta)}
    if not isinstance(blob, dict) or "state_dict" not in blob or "meta" not in blob or "yaml" not in blob["meta"]:
        keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: expected keys 'state_dict' and 'meta' (with 'yaml'), found {keys}")
    return blob


def load_yolov5(path: str | Path, upto: int | None = None, meta: Mapping[str, Any] | None = None) -> YOLOv5:
    """Build a YOLOv5 from a plain-tensor checkpoint and load its weights strictly (fp32, eval).

    ``meta``: see :func:`load_checkpoint_tensors`.
    """
    blob = load_checkpoint_tensors(path, meta)
    meta = blob["meta"]
    model = YOLOv5(meta["yaml"], upto=upto)
    # anchor_grid is derived from anchors and strides (and is not saved by every YOLOv5 version).
    state = {
        k: v.float() if v.is_floating_point() else v
        for k, v in blob["state_dict"].items()
        if not k.endswith(".anchor_grid")
    }
    expected = model.state_dict()
    if upto is not None:
        state = {k: v for k, v in state.items() if k in expected}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} does not match the YOLOv5 layer list it carries: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}, "
            f"wrong shape {wrong[:8]}"
        )
    model.load_state_dict(state, strict=True)
    if upto is None:
        detect = model.model[-1]
        detect.stride.copy_(torch.tensor(meta.get("stride", [8.0, 16.0, 32.0]), dtype=torch.float32))
    model.names = list(meta.get("names", []))
    return model.eval()
