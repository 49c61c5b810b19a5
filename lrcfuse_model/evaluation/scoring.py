"""Scoring fusion methods image by image: every method on every pair of a dataset, the ten metrics per output.

:func:`run_dataset` fuses (or reads) every pair with every method and computes
:func:`~lrcfuse_model.evaluation.metrics.compute_all` on 8-bit gray images: a colour output is converted with PIL
``convert("L")``; the sources are read with :func:`~lrcfuse_model.images.preprocess.read_image`, reduced with
``to_single_channel`` and converted to ``L`` (a 16-bit thermal image is first normalised as the model sees it, per
the ``data`` config). ``average`` is ``(ir + vi) / 2`` rounded half to even with ``np.round`` on the 8-bit gray
sources (the convention of the golden values), ``max`` the pixel max. The fusion time of each image is recorded
(none for folder methods). A broken or missing image is recorded as a failure with its reason and skipped. Pairs
follow :func:`~lrcfuse_model.images.pairing.dataset_pairs` (the one pairing policy).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..config import ConfigError
from ..images.pairing import IMAGE_SUFFIXES, Pair, dataset_pairs
from ..images.preprocess import (
    InputError,
    describe_error,
    read_image,
    thermal_to_float,
    to_single_channel,
    visible_to_float,
)
from ..reporting import spaced_indices
from .methods import Dataset, Method, fuser_of
from .metrics import compute_all

__all__ = ["ALL_METHODS", "DatasetRun", "fused_gray", "read_sources", "run_dataset", "source_gray"]

ALL_METHODS = "(all)"  # the method column of a failure that concerns the pair itself (its sources)


# ----------------------------------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------------------------------


def _to_l(img: np.ndarray) -> np.ndarray:
    """uint8 gray / RGB array -> uint8 2-D gray (PIL ``convert("L")``)."""
    if img.ndim == 2:
        return img
    return np.asarray(Image.fromarray(img).convert("L"))


def source_gray(img: np.ndarray, role: str, data_cfg: Mapping[str, Any] | None = None, name: str = "") -> np.ndarray:
    """A source image (as read) -> uint8 2-D gray for the metrics (``role``: ``ir`` or ``vi``)."""
    img = to_single_channel(img, name or role)
    if img.dtype == np.uint8:
        return _to_l(img)
    # 16-bit (or float) sources: scale to 0..1 the way the model sees them, then to 8 bits.
    if role == "ir":
        x = thermal_to_float(img, data_cfg, name or role)
    else:
        x = visible_to_float(img, name or role)
    return _to_l((np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def fused_gray(img: np.ndarray, name: str = "fused image") -> np.ndarray:
    """A fused output -> uint8 2-D gray (colour through PIL ``convert("L")``)."""
    if img.dtype != np.uint8:
        raise InputError(f"{name}: expected an 8-bit image, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3):
        raise InputError(f"{name}: expected H x W or H x W x 3, got shape {img.shape}")
    return _to_l(img)


def _folder_images(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(p.stem, []).append(p)
    return found


# ----------------------------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class DatasetRun:
    """What :func:`run_dataset` produced for one dataset."""

    dataset: Dataset
    methods: list[Method]  # the methods that ran on it (folder methods without a folder are left out)
    n_pairs: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    grid: list[dict[str, Any]] = field(default_factory=list)  # per grid row: name, ir, vi, fused {method: img}


def _failure(dataset: str, method: str, image: str, error: str) -> dict[str, str]:
    return {"dataset": dataset, "method": method, "image": image, "error": error}


def _grid_names(pairs: Sequence[Pair], count: int, names: Sequence[str]) -> list[str]:
    if names:
        return [n for n in names if any(p.name == n for p in pairs)]
    return [pairs[i].name for i in spaced_indices(len(pairs), count)]


def _methods_here(
    run: DatasetRun,
    methods: Sequence[Method],
    data_root: str | Path,
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None,
) -> dict[str, dict[str, list[Path]]]:
    """Put the methods that run on ``run.dataset`` into ``run.methods`` and return the images of each folder method.

    A templated folder that does not exist for this dataset skips its method with a note; any other missing folder
    is a :class:`~lrcfuse_model.config.ConfigError`, and ``ours`` without a fuser a ``ValueError``.
    """
    folders: dict[str, dict[str, list[Path]]] = {}
    for m in methods:
        if m.kind == "folder":
            folder = m.folder_for(run.dataset.name, data_root)
            if not folder.is_dir():
                if m.templated:
                    run.notes.append(f"{run.dataset.name}: method {m.name} skipped: no folder {folder}")
                    continue
                raise ConfigError(f"method {m.name}: folder {folder} does not exist")
            folders[m.name] = _folder_images(folder)
        elif m.kind == "ours" and fuser_of(m.name, fuser) is None:
            raise ValueError(f"method {m.name!r} needs a fuser (weights)")
        run.methods.append(m)
    return folders


def read_sources(
    pair: Pair, data_cfg: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ir, vi, ir_gray, vi_gray)`` of a pair: the images as read, and the 8-bit gray images the metrics compare
    with. Sizes that differ are an :class:`InputError`, or the thermal image is resized with
    ``data.size_mismatch: resize_ir``."""
    ir, vi = read_image(pair.ir), read_image(pair.vi)
    ir_g = source_gray(ir, "ir", data_cfg, str(pair.ir))
    vi_g = source_gray(vi, "vi", data_cfg, str(pair.vi))
    if ir_g.shape != vi_g.shape:
        if data_cfg.get("size_mismatch") != "resize_ir":
            raise InputError(
                f"{pair.ir} is {ir_g.shape[1]}x{ir_g.shape[0]} but {pair.vi} is {vi_g.shape[1]}x{vi_g.shape[0]}"
                " (width x height); set data.size_mismatch: resize_ir to resize the thermal image"
            )
        ir_g = np.asarray(Image.fromarray(ir_g).resize(vi_g.shape[::-1], Image.BILINEAR))
    return ir, vi, ir_g, vi_g


def _warm_up(fuser: Callable[..., np.ndarray], ir: np.ndarray, vi: np.ndarray) -> None:
    """The first call pays one-off costs (allocations, kernels): not fusion time. A failure here is not one."""
    try:
        fuser(ir[:32, :32], vi[:32, :32])
    except Exception:
        pass


def _method_output(
    m: Method,
    pair: Pair,
    sources: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None,
    folder_images: Mapping[str, list[Path]] | None,
    folder: Path | None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(fused, fused_gray, seconds)`` of method ``m`` on one pair (``seconds`` NaN for a folder method)."""
    ir, vi, ir_g, vi_g = sources
    if m.kind == "folder":
        files = folder_images.get(pair.name, []) if folder_images is not None else []
        if not files:
            raise InputError(f"no fused image named {pair.name}.* in {folder}")
        if len(files) > 1:
            raise InputError(f"several fused images named {pair.name}.*: {', '.join(f.name for f in files)}")
        fused = read_image(files[0])
        return fused, fused_gray(fused, str(files[0])), math.nan
    if m.kind == "ours":
        t0 = time.perf_counter()
        fused = fuser_of(m.name, fuser)(ir, vi, names=(str(pair.ir), str(pair.vi)))  # type: ignore[misc]
        seconds = time.perf_counter() - t0
        return fused, fused_gray(fused), seconds
    t0 = time.perf_counter()
    if m.kind == "average":
        fused = np.round((ir_g.astype(np.float64) + vi_g) / 2.0).astype(np.uint8)
    else:
        fused = np.maximum(ir_g, vi_g)
    return fused, fused, time.perf_counter() - t0


def run_dataset(
    dataset: Dataset,
    methods: Sequence[Method],
    *,
    data_root: str | Path = "../shared/data",
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None = None,
    data_cfg: Mapping[str, Any] | None = None,
    limit: int = 0,
    grid_images: int = 4,
    grid_names: Sequence[str] = (),
    save_fused: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DatasetRun:
    """Every method on every pair of ``dataset``: per-image metric rows, failures, notes and the grid images.

    ``fuser`` (``fuser(ir, vi, names=...) -> fused``, or one per method name) is needed when a method of kind
    ``ours`` (``ours``, ``ours-rt``) is among ``methods``.
    ``save_fused``: a folder; fused images of the computed methods go to ``save_fused/<method>/<pair>.png``.
    """
    from tqdm import tqdm

    data_cfg = dict(data_cfg or {})
    run = DatasetRun(dataset, [])
    pairs, problems = dataset_pairs(dataset.root)
    for problem in problems:
        run.failures.append(_failure(dataset.name, ALL_METHODS, problem.name, str(problem)))
    if limit > 0:
        pairs = pairs[:limit]
    run.n_pairs = len(pairs)
    folders = _methods_here(run, methods, data_root, fuser)
    for note in run.notes:
        log(note)

    wanted = set(_grid_names(pairs, grid_images, grid_names))
    missing_grid = [n for n in grid_names if n not in wanted]
    if missing_grid:
        run.notes.append(f"{dataset.name}: grid images not among the pairs: {', '.join(missing_grid)}")
        log(run.notes[-1])
    warmed: set[str] = set()

    def fail(method: str, image: str, error: str) -> None:
        run.failures.append(_failure(dataset.name, method, image, error))
        tqdm.write(f"FAILED {dataset.name} {method} {image}: {error}", file=sys.stderr)

    for pair in tqdm(pairs, desc=dataset.name, unit="pair", disable=not progress, dynamic_ncols=True):
        try:
            sources = read_sources(pair, data_cfg)
        except Exception as exc:  # a broken pair is recorded for every method and skipped
            fail(ALL_METHODS, pair.name, describe_error(exc))
            continue
        ir, vi, ir_g, vi_g = sources
        grid_row = None
        if pair.name in wanted:
            vi_show = vi if vi.dtype == np.uint8 and vi.ndim == 3 and vi.shape[2] == 3 else vi_g
            grid_row = {"name": pair.name, "ir": ir_g, "vi": to_single_channel(vi_show), "fused": {}}
            run.grid.append(grid_row)
        for m in run.methods:
            try:
                if m.kind == "ours" and m.name not in warmed:
                    warmed.add(m.name)
                    _warm_up(fuser_of(m.name, fuser), ir, vi)  # type: ignore[arg-type]
                folder = m.folder_for(dataset.name, data_root) if m.kind == "folder" else None
                fused, gray, seconds = _method_output(m, pair, sources, fuser, folders.get(m.name), folder)
                if gray.shape != ir_g.shape:
                    raise InputError(
                        f"fused image is {gray.shape[1]}x{gray.shape[0]} but the pair is "
                        f"{ir_g.shape[1]}x{ir_g.shape[0]} (width x height)"
                    )
                values = compute_all(gray, ir_g, vi_g)
            except Exception as exc:  # one failed (method, image) is recorded and skipped, the run goes on
                fail(m.name, pair.name, describe_error(exc))
                continue
            run.rows.append(
                {"dataset": dataset.name, "method": m.name, "image": pair.name, **values, "seconds": seconds}
            )
            if grid_row is not None:
                grid_row["fused"][m.name] = fused
            if save_fused is not None and m.kind != "folder":
                target = Path(save_fused) / m.name / f"{pair.name}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(fused).save(target)
    return run
