"""Fusing images with a trained LRCFuse: the one-call numpy API and batch folders.

``Fuser`` is the one place where a frame goes preprocessing -> network -> output image; the
network runs on any :class:`lrcfuse_model.inference.backends.Backend` (PyTorch by default, ONNX
Runtime, TensorRT). ``fuse(ir, vi)`` fuses one pair of numpy arrays (any size; gray or colour
visible; 8- or 16-bit thermal) in one call with the shipped model
(:func:`lrcfuse_model.nn.checkpoint.load_pretrained`). ``fuse_folders`` fuses every pair of two
folders, records each failure in a report and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..images.pairing import find_pairs
from ..images.preprocess import InputError, describe_error, finish, load_homography, prepare_pair, read_image
from ..nn.checkpoint import load_pretrained
from ..nn.model import LRCFuse
from ..reporting import write_json
from .backends import Backend, TorchBackend


class Fuser:
    """Preprocessing + a backend + the output image: ``fuser(ir, vi) -> fused uint8 image``.

    ``backend`` given: the network runs on it (see :func:`lrcfuse_model.inference.backends.create_backend`);
    otherwise on PyTorch with ``model`` (default: the shipped weights) on ``device``.
    ``colour=False``: a colour visible image still fuses its luma, but the output is that gray
    fused image, without the visible chroma (the node's mono8 output).
    """

    def __init__(
        self,
        model: LRCFuse | None = None,
        data_cfg: Mapping[str, Any] | None = None,
        device: str = "cpu",
        backend: Backend | None = None,
        colour: bool = True,
    ) -> None:
        if backend is None:
            backend = TorchBackend(model if model is not None else load_pretrained("default", device), device)
        self.backend = backend
        self.device = backend.device
        self.model: LRCFuse | None = getattr(backend, "model", None)  # the PyTorch model, when there is one
        self.data_cfg = dict(data_cfg or {})
        load_homography(self.data_cfg)  # a bad alignment setting fails here, not once per frame
        self.colour = colour

    def __call__(
        self, ir: np.ndarray, vi: np.ndarray, names: tuple[str, str] = ("thermal image", "visible image")
    ) -> np.ndarray:
        pair = prepare_pair(ir, vi, self.data_cfg, names)
        if not self.colour:
            pair = replace(pair, cbcr=None)
        fused = self.backend.fuse(pair.ir, pair.vi_y)
        if not np.isfinite(fused).all():
            raise InputError(f"{names[0]} + {names[1]}: the network produced NaN/inf (corrupt weights or input?)")
        return finish(fused, pair)


_DEFAULT_FUSER: Fuser | None = None


def fuse(
    ir: np.ndarray, vi: np.ndarray, model: LRCFuse | None = None, data_cfg: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Fuse one thermal + visible pair of numpy arrays with the shipped (or given) model.

    ``ir``: ``H x W`` uint8/uint16/float (or R=G=B RGB). ``vi``: ``H x W`` gray or ``H x W x 3``
    RGB. Returns uint8 ``H x W`` (gray visible) or ``H x W x 3`` RGB (colour visible).
    """
    global _DEFAULT_FUSER
    if model is not None or data_cfg:
        return Fuser(model, data_cfg)(ir, vi)
    if _DEFAULT_FUSER is None:
        _DEFAULT_FUSER = Fuser()
    return _DEFAULT_FUSER(ir, vi)


@dataclass
class FolderReport:
    """What a batch run did: one row per pair, failures with their reason."""

    fused: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    report_error: str = ""  # why ``report.json`` could not be written ("" = it was)

    def to_dict(self) -> dict[str, Any]:
        return {"fused": self.fused, "failed": self.failed, "n_fused": len(self.fused), "n_failed": len(self.failed)}


def fuse_folders(
    ir_dir: str | Path,
    vi_dir: str | Path,
    out_dir: str | Path,
    fuser: Fuser,
    progress: Callable[[Any], Any] | None = None,
) -> FolderReport:
    """Fuse every pair of ``ir_dir`` / ``vi_dir`` into ``out_dir/<name>.png``.

    A pair that fails (unreadable file, size mismatch, missing partner ...) is recorded in the
    report with its reason and the run goes on; ``out_dir/report.json`` is written at the end.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs, problems = find_pairs(ir_dir, vi_dir)
    report = FolderReport(failed=[{"name": p.name, "error": str(p)} for p in problems])
    iterator = progress(pairs) if progress else pairs
    for pair in iterator:
        try:
            t0 = time.perf_counter()
            ir, vi = read_image(pair.ir), read_image(pair.vi)
            fused = fuser(ir, vi, names=(str(pair.ir), str(pair.vi)))
            seconds = time.perf_counter() - t0
            target = out_dir / f"{pair.name}.png"
            Image.fromarray(fused).save(target)
            report.fused.append(
                {
                    "name": pair.name,
                    "output": str(target),
                    "height": fused.shape[0],
                    "width": fused.shape[1],
                    "seconds": round(seconds, 4),
                }
            )
        except Exception as exc:  # a batch job records any failure of one pair and goes on
            report.failed.append({"name": pair.name, "error": describe_error(exc)})
    try:
        write_json(out_dir / "report.json", report.to_dict())
    except OSError as exc:  # the outcome stays in the returned report, for the caller to show
        report.report_error = f"{out_dir / 'report.json'} could not be written ({exc})"
    return report
