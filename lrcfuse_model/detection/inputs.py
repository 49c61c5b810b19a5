"""The inputs of ``lrcfuse detect-eval``: what the detector sees for each pair.

``ir`` and ``vi`` (the source images; the thermal image as the network sees it), ``average`` / ``max`` (pixel mean /
max of the infrared image and the visible luminance, the visible chroma put back: both through the one preprocessing
path, :func:`~lrcfuse_model.images.preprocess.prepare_pair` + :func:`~lrcfuse_model.images.preprocess.finish`, like
``ours``), ``ours`` (LRCFuse through :class:`~lrcfuse_model.inference.fuser.Fuser`) and ``NAME=DIR`` (another
method's fused images); fusion method names are parsed by :func:`lrcfuse_model.evaluation.methods.parse_methods`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, refuse_repeats, split_list
from ..evaluation.methods import Method, fuser_of, parse_methods
from ..images.pairing import IMAGE_SUFFIXES
from ..images.preprocess import InputError, finish, prepare_pair, read_image

__all__ = ["ALL_INPUTS", "SOURCE_INPUTS", "Input", "find_fused_image", "make_input", "parse_inputs"]

SOURCE_INPUTS: tuple[str, ...] = ("ir", "vi")
ALL_INPUTS = "(all)"  # the input column of a failure that concerns the pair itself


@dataclass(frozen=True)
class Input:
    """One column of the experiment: ``ir``, ``vi`` or a fusion :class:`~lrcfuse_model.evaluation.methods.Method`."""

    name: str
    method: Method | None = None

    @property
    def kind(self) -> str:
        return self.name if self.method is None else self.method.kind


def parse_inputs(specs: str | Iterable[str]) -> list[Input]:
    """``ir``, ``vi`` and fusion method specs (``average``, ``max``, ``ours``, ``NAME=DIR``; a list and/or commas)."""
    items = split_list(specs)
    if not items:
        raise ConfigError("no input given (--methods ir,vi,average,ours)")
    sources = [i for i in items if i in SOURCE_INPUTS]
    fused = parse_methods([i for i in items if i not in SOURCE_INPUTS]) if len(sources) < len(items) else []
    by_name = {m.name: m for m in fused}
    inputs = []
    for item in items:
        if item in SOURCE_INPUTS:
            inputs.append(Input(item))
        else:
            name = item.split("=", 1)[0].strip()
            inputs.append(Input(name, by_name[name]))
    refuse_repeats((i.name for i in inputs), "input(s)")
    return inputs


def make_input(
    inp: Input | str,
    ir: np.ndarray,
    vi: np.ndarray,
    *,
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None = None,
    data_cfg: Mapping[str, Any] | None = None,
    names: tuple[str, str] = ("thermal image", "visible image"),
    folder_image: Path | None = None,
) -> np.ndarray:
    """The uint8 image the detector sees for one input of one pair (gray ``H x W`` or RGB ``H x W x 3``)."""
    kind = inp if isinstance(inp, str) else inp.kind
    if kind == "ir":
        # The thermal image as the network sees it: normalised, and warped / resized into the visible frame the
        # labels are in when the data config says so.
        return (np.clip(prepare_pair(ir, vi, data_cfg, names).ir, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if kind == "vi":
        if vi.dtype == np.uint8:
            return vi
        return (np.clip(vi.astype(np.float32) / 65535.0, 0, 1) * 255 + 0.5).astype(np.uint8)
    if kind == "ours":
        name = inp if isinstance(inp, str) else inp.name
        chosen = fuser_of(name, fuser)
        if chosen is None:
            raise ValueError(f"input {name!r} needs a fuser (LRCFuse weights)")
        return chosen(ir, vi, names=names)
    if kind in ("average", "max"):
        pair = prepare_pair(ir, vi, data_cfg, names)
        fused_y = (pair.ir + pair.vi_y) / 2.0 if kind == "average" else np.maximum(pair.ir, pair.vi_y)
        return finish(fused_y, pair)
    if kind == "folder":
        if folder_image is None:
            raise InputError("no fused image for this pair in the method's folder")
        return read_image(folder_image)
    raise ValueError(f"unknown input kind {kind!r}")


def find_fused_image(folder: Path, name: str) -> Path | None:
    """The fused image named ``name.*`` in a method's folder (``None``: there is none; several: an error)."""
    found = [p for p in folder.glob(f"{name}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
    if len(found) > 1:
        raise InputError(f"several fused images named {name}.* in {folder}: {', '.join(p.name for p in found)}")
    return found[0] if found else None
