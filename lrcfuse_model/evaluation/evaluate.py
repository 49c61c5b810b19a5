"""Evaluating fusion methods on paired datasets: the ten metrics, summary tables, bar charts and comparison grids.

``lrcfuse eval`` is a thin wrapper around :func:`evaluate`; every step is also a function of its own:

* :func:`parse_methods` turns method specs into :class:`Method` objects. Built in: ``ours`` (LRCFuse through
  :class:`~lrcfuse_model.inference.fuser.Fuser`), ``average`` (``(ir + vi) / 2`` rounded half to even with ``np.round``,
  on the 8-bit gray sources: the convention of the golden values) and ``max`` (pixel max). ``NAME=DIR`` reads
  another method's fused images from a folder, named like the dataset's pairs (any image extension). ``DIR`` may
  hold ``{dataset}`` (the dataset's name) and ``{data_root}``; a templated folder that does not exist for a dataset
  skips the method there with a note. ``lrrnet`` is short for ``lrrnet={data_root}/reference_outputs/lrrnet_{dataset}``.
* :func:`resolve_datasets`: names under ``data_root`` or paths of folders holding ``ir/`` and ``vi/``; pairs
  follow :func:`~lrcfuse_model.images.pairing.dataset_pairs` (the one pairing policy).
* :func:`run_dataset` fuses (or reads) every pair with every method and computes
  :func:`~lrcfuse_model.evaluation.metrics.compute_all` on 8-bit gray images: a colour output is converted with PIL
  ``convert("L")``; the sources are read with :func:`~lrcfuse_model.images.preprocess.read_image`, reduced with
  ``to_single_channel`` and converted to ``L`` (a 16-bit thermal image is first normalised as the model sees it,
  per the ``data`` config). The fusion time of each image is recorded (none for folder methods). A broken or
  missing image is recorded as a failure with its reason and skipped.
* :func:`rank_table` (per-metric ranks, ties share the mean rank, Nabf lower-is-better, average rank over the ten
  metrics like the LRCFuse paper), :func:`summarise`, :func:`summary_markdown`, :func:`plot_bars`,
  :func:`make_grid` (rows = pairs, columns = ir, vi, each method, with a zoomed inset chosen by
  :func:`choose_zoom_box`).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..config import ConfigError, split_list
from ..images.pairing import IMAGE_SUFFIXES, Pair, dataset_pairs
from ..images.preprocess import (
    InputError,
    describe_error,
    read_image,
    thermal_to_float,
    to_single_channel,
    visible_to_float,
)
from .metrics import METRIC_KEYS, compute_all

__all__ = [
    "BUILTIN_METHODS",
    "FOLDER_ALIASES",
    "LOWER_IS_BETTER",
    "Dataset",
    "EvalResult",
    "Method",
    "choose_zoom_box",
    "evaluate",
    "make_grid",
    "parse_methods",
    "plot_bars",
    "rank_table",
    "resolve_datasets",
    "run_dataset",
    "summarise",
    "summary_markdown",
]

BUILTIN_METHODS: tuple[str, ...] = ("ours", "average", "max")
FOLDER_ALIASES: dict[str, str] = {"lrrnet": "{data_root}/reference_outputs/lrrnet_{dataset}"}
LOWER_IS_BETTER: frozenset[str] = frozenset({"Nabf"})
ALL_METHODS = "(all)"  # the method column of a failure that concerns the pair itself (its sources)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_PLACEHOLDERS = ("{dataset}", "{data_root}")


# ----------------------------------------------------------------------------------------------------------------
# methods and datasets
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One column of the evaluation: ``kind`` is ``ours``, ``average``, ``max`` or ``folder`` (``folder`` set)."""

    name: str
    kind: str
    folder: str = ""  # a folder template for kind "folder": may hold {dataset} and {data_root}

    @property
    def templated(self) -> bool:
        return any(p in self.folder for p in _PLACEHOLDERS)

    def folder_for(self, dataset: str, data_root: str | Path) -> Path:
        """The folder of this method's fused images for ``dataset`` (placeholders replaced)."""
        return Path(self.folder.replace("{data_root}", str(data_root)).replace("{dataset}", dataset))


def _valid_methods_text() -> str:
    aliases = ", ".join(f"{k} (= {k}={v})" for k, v in FOLDER_ALIASES.items())
    return (
        f"valid methods: {', '.join(BUILTIN_METHODS)}, {aliases}, or NAME=DIR (a folder of fused images named like "
        "the dataset's pairs; DIR may contain {dataset} and {data_root})"
    )


def parse_methods(specs: str | Iterable[str]) -> list[Method]:
    """Method specs (a list, and/or comma-separated strings) -> :class:`Method` list, in order.

    Raises :class:`~lrcfuse_model.config.ConfigError` for an unknown name (listing the valid ones), an empty list,
    a bad ``NAME`` or a name given twice.
    """
    items = split_list(specs)
    if not items:
        raise ConfigError(f"no method given; {_valid_methods_text()}")
    methods: list[Method] = []
    for item in items:
        if "=" in item:
            name, folder = (x.strip() for x in item.split("=", 1))
            if not _NAME_RE.match(name) or name in BUILTIN_METHODS:
                raise ConfigError(
                    f"method {item!r}: NAME must be letters, digits, '_', '.', '+' or '-' and not one of "
                    f"{', '.join(BUILTIN_METHODS)}"
                )
            if not folder:
                raise ConfigError(f"method {item!r}: empty folder after '='")
            methods.append(Method(name, "folder", folder))
        elif item in BUILTIN_METHODS:
            methods.append(Method(item, item))
        elif item in FOLDER_ALIASES:
            methods.append(Method(item, "folder", FOLDER_ALIASES[item]))
        else:
            raise ConfigError(f"unknown method {item!r}; {_valid_methods_text()}")
    names = [m.name for m in methods]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"method name(s) given twice: {', '.join(dupes)}")
    return methods


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path


def _is_dataset_dir(p: Path) -> bool:
    return (p / "ir").is_dir() and (p / "vi").is_dir()


def resolve_datasets(names: str | Iterable[str], data_root: str | Path = "../shared/data") -> list[Dataset]:
    """Dataset names (under ``data_root``) or paths (folders with ``ir/`` and ``vi/``) -> :class:`Dataset` list.

    A path (anything with a ``/``) is used as is; a bare name is looked up under ``data_root`` first, then in the
    working directory. The dataset's name (used in the tables and for ``{dataset}``) is the folder's name.
    """
    items = split_list(names)
    if not items:
        raise ConfigError("no dataset given (--datasets NAME_OR_DIR ...)")
    root = Path(data_root)
    out: list[Dataset] = []
    for item in items:
        p = Path(item).expanduser()
        is_path = "/" in item or p.is_absolute()
        candidates = [p] if is_path else [root / item, p]
        found = next((c for c in candidates if _is_dataset_dir(c)), None)
        if found is None:
            available = sorted(d.name for d in root.iterdir() if _is_dataset_dir(d)) if root.is_dir() else []
            where = (
                f"; datasets under {root}: {', '.join(available)}"
                if available
                else f"; data root {root} {'has no dataset folders' if root.is_dir() else 'does not exist'}"
            )
            raise ConfigError(
                f"dataset {item!r}: no folder with ir/ and vi/ found at {' or '.join(map(str, candidates))}{where}"
            )
        name = found.resolve().name if found.name in ("", ".", "..") else found.name
        out.append(Dataset(name, found))
    names_seen = [d.name for d in out]
    dupes = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if dupes:
        raise ConfigError(f"dataset name(s) given twice: {', '.join(dupes)}")
    return out


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


def spaced_indices(n: int, count: int) -> list[int]:
    """Up to ``count`` indices evenly spread over ``range(n)``, first and last included (grid rows)."""
    if count <= 0 or n <= 0:
        return []
    return [int(i) for i in np.unique(np.round(np.linspace(0, n - 1, min(count, n))).astype(int))]


def _grid_names(pairs: Sequence[Pair], count: int, names: Sequence[str]) -> list[str]:
    if names:
        return [n for n in names if any(p.name == n for p in pairs)]
    return [pairs[i].name for i in spaced_indices(len(pairs), count)]


def run_dataset(
    dataset: Dataset,
    methods: Sequence[Method],
    *,
    data_root: str | Path = "../shared/data",
    fuser: Callable[..., np.ndarray] | None = None,
    data_cfg: Mapping[str, Any] | None = None,
    limit: int = 0,
    grid_images: int = 4,
    grid_names: Sequence[str] = (),
    save_fused: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DatasetRun:
    """Every method on every pair of ``dataset``: per-image metric rows, failures, notes and the grid images.

    ``fuser`` (``fuser(ir, vi, names=...) -> fused``) is needed when ``ours`` is among ``methods``.
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

    folders: dict[str, dict[str, list[Path]]] = {}
    for m in methods:
        if m.kind == "folder":
            folder = m.folder_for(dataset.name, data_root)
            if not folder.is_dir():
                if m.templated:
                    run.notes.append(f"{dataset.name}: method {m.name} skipped: no folder {folder}")
                    continue
                raise ConfigError(f"method {m.name}: folder {folder} does not exist")
            folders[m.name] = _folder_images(folder)
        elif m.kind == "ours" and fuser is None:
            raise ValueError("method 'ours' needs a fuser (weights)")
        run.methods.append(m)
    for note in run.notes:
        log(note)

    wanted = set(_grid_names(pairs, grid_images, grid_names))
    missing_grid = [n for n in grid_names if n not in wanted]
    if missing_grid:
        run.notes.append(f"{dataset.name}: grid images not among the pairs: {', '.join(missing_grid)}")
        log(run.notes[-1])
    warmed = False

    def fail(method: str, image: str, error: str) -> None:
        run.failures.append(_failure(dataset.name, method, image, error))
        tqdm.write(f"FAILED {dataset.name} {method} {image}: {error}", file=sys.stderr)

    for pair in tqdm(pairs, desc=dataset.name, unit="pair", disable=not progress, dynamic_ncols=True):
        try:
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
        except Exception as exc:  # a broken pair is recorded for every method and skipped
            fail(ALL_METHODS, pair.name, describe_error(exc))
            continue
        grid_row = None
        if pair.name in wanted:
            vi_show = vi if vi.dtype == np.uint8 and vi.ndim == 3 and vi.shape[2] == 3 else vi_g
            grid_row = {"name": pair.name, "ir": ir_g, "vi": to_single_channel(vi_show), "fused": {}}
            run.grid.append(grid_row)
        for m in run.methods:
            try:
                seconds = math.nan
                if m.kind == "folder":
                    files = folders[m.name].get(pair.name, [])
                    if not files:
                        raise InputError(
                            f"no fused image named {pair.name}.* in {m.folder_for(dataset.name, data_root)}"
                        )
                    if len(files) > 1:
                        raise InputError(
                            f"several fused images named {pair.name}.*: {', '.join(f.name for f in files)}"
                        )
                    fused = read_image(files[0])
                    gray = fused_gray(fused, str(files[0]))
                elif m.kind == "ours":
                    if not warmed:  # the first call pays one-off costs (allocations, kernels): not fusion time
                        warmed = True
                        try:
                            fuser(ir[:32, :32], vi[:32, :32])
                        except Exception:
                            pass
                    t0 = time.perf_counter()
                    fused = fuser(ir, vi, names=(str(pair.ir), str(pair.vi)))
                    seconds = time.perf_counter() - t0
                    gray = fused_gray(fused)
                else:
                    t0 = time.perf_counter()
                    if m.kind == "average":
                        fused = np.round((ir_g.astype(np.float64) + vi_g) / 2.0).astype(np.uint8)
                    else:
                        fused = np.maximum(ir_g, vi_g)
                    seconds = time.perf_counter() - t0
                    gray = fused
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


# ----------------------------------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------------------------------


def rank_table(
    means: Mapping[str, Mapping[str, float]],
    keys: Sequence[str] = METRIC_KEYS,
    lower_is_better: Iterable[str] = LOWER_IS_BETTER,
) -> dict[str, dict[str, float]]:
    """Per-metric ranks of the methods (1 = best) and their average: ``{method: {key: rank, ..., "avg_rank"}}``.

    ``means``: ``{method: {metric: mean}}``. Higher is better except for the ``lower_is_better`` keys. Tied
    values share the mean of the ranks they span (1, 2.5, 2.5, 4); a missing or NaN value ranks after every
    number. ``avg_rank`` is the mean of the method's ranks over ``keys`` (the LRCFuse paper's average rank).
    """
    lower = set(lower_is_better)
    methods = list(means)
    ranks: dict[str, dict[str, float]] = {m: {} for m in methods}
    for k in keys:
        raw = [means[m].get(k, math.nan) for m in methods]
        vals = [math.nan if v is None or not math.isfinite(float(v)) else float(v) for v in raw]
        vals = [-v if (k not in lower and not math.isnan(v)) else v for v in vals]  # smaller is better now
        finite = [v for v in vals if not math.isnan(v)]
        n_nan = len(vals) - len(finite)
        for m, v in zip(methods, vals):
            if math.isnan(v):
                ranks[m][k] = len(finite) + (n_nan + 1) / 2.0
            else:
                better = sum(1 for w in finite if w < v)
                tied = sum(1 for w in finite if w == v)
                ranks[m][k] = better + (tied + 1) / 2.0
    for m in methods:
        ranks[m]["avg_rank"] = float(np.mean([ranks[m][k] for k in keys])) if keys else math.nan
    return ranks


def summarise(rows: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-image rows of one dataset -> one summary row per method (in ``methods`` order, if given).

    Each row: ``method``, ``n``, ``<K>_mean``, ``<K>_std`` (population std, 1/N), ``<K>_rank`` for the ten
    metrics, ``avg_rank`` and ``ms_per_image`` (mean fusion time; NaN for folder methods). Methods without any
    row are left out.
    """
    order = list(methods) if methods is not None else list(dict.fromkeys(r["method"] for r in rows))
    by_method = {m: [r for r in rows if r["method"] == m] for m in order}
    by_method = {m: rs for m, rs in by_method.items() if rs}
    out: dict[str, dict[str, Any]] = {}
    for m, rs in by_method.items():
        row: dict[str, Any] = {"method": m, "n": len(rs)}
        for k in METRIC_KEYS:
            a = np.array([float(r[k]) for r in rs], dtype=np.float64)
            row[f"{k}_mean"] = float(np.nanmean(a)) if np.isfinite(a).any() else math.nan
            row[f"{k}_std"] = float(np.nanstd(a)) if np.isfinite(a).any() else math.nan
        secs = np.array([float(r["seconds"]) for r in rs], dtype=np.float64)
        row["ms_per_image"] = float(np.mean(secs[np.isfinite(secs)]) * 1000.0) if np.isfinite(secs).any() else math.nan
        out[m] = row
    ranks = rank_table({m: {k: row[f"{k}_mean"] for k in METRIC_KEYS} for m, row in out.items()})
    for m, row in out.items():
        for k in METRIC_KEYS:
            row[f"{k}_rank"] = ranks[m][k]
        row["avg_rank"] = ranks[m]["avg_rank"]
    return list(out.values())


def _num(v: float, key: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.4f}" if key == "Nabf" else f"{v:.3f}"


def _ms(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _rank(v: float) -> str:
    return f"{v:g}" if math.isfinite(v) else "n/a"


def _best(values: Sequence[float], lower: bool) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    return min(finite) if lower else max(finite)


def summary_markdown(summary: Sequence[Mapping[str, Any]], title: str = "", n_pairs: int | None = None) -> str:
    """Markdown: the mean ± std table (best mean in bold per metric, Nabf lowest; average rank and ms per image)
    and the table of per-metric ranks."""
    lines: list[str] = []
    if title:
        lines += [f"### {title}" + (f" ({n_pairs} pairs)" if n_pairs is not None else ""), ""]
    if not summary:
        return "\n".join(lines + ["(no method produced a result)", ""])
    heads = ["method", "n", *[f"{k} ↓" if k in LOWER_IS_BETTER else k for k in METRIC_KEYS], "avg rank", "ms / image"]
    lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    best = {k: _best([r[f"{k}_mean"] for r in summary], k in LOWER_IS_BETTER) for k in METRIC_KEYS}
    best_rank = _best([r["avg_rank"] for r in summary], True)
    for r in summary:
        cells = [str(r["method"]), str(r["n"])]
        for k in METRIC_KEYS:
            cell = f"{_num(r[f'{k}_mean'], k)} ± {_num(r[f'{k}_std'], k)}"
            cells.append(f"**{cell}**" if r[f"{k}_mean"] == best[k] else cell)
        rank = f"{r['avg_rank']:.2f}"
        cells += [f"**{rank}**" if r["avg_rank"] == best_rank else rank, _ms(r["ms_per_image"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Ranks per metric (1 = best; ties share the mean rank):", ""]
    heads = ["method", *METRIC_KEYS, "avg rank"]
    lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in summary:
        lines.append(
            "| "
            + " | ".join([str(r["method"]), *[_rank(r[f"{k}_rank"]) for k in METRIC_KEYS]])
            + f" | {r['avg_rank']:.2f} |"
        )
    lines += [
        "",
        "Mean ± std over the images (std: 1/N). Nabf (↓): lower is better; every other metric: higher is better. "
        "Best in bold. avg rank: mean of the ten per-metric ranks. ms / image: fusion time per image "
        "(n/a: outputs read from a folder).",
    ]
    if len({r["n"] for r in summary}) > 1:
        lines.append("Note: the methods were averaged over different numbers of images (column n; see the failures).")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(summary: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """One PNG, a subplot per metric: each method's mean with a ±std error bar."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [str(r["method"]) for r in summary]
    colors = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(2, 5, figsize=(max(12.0, 1.1 * 5 * max(len(names), 1)), 6.5), squeeze=False)
    for ax, k in zip(axes.flat, METRIC_KEYS):
        means = np.array([r[f"{k}_mean"] for r in summary], dtype=np.float64)
        stds = np.array([r[f"{k}_std"] for r in summary], dtype=np.float64)
        x = np.arange(len(names))
        ax.bar(
            x,
            np.nan_to_num(means),
            yerr=np.nan_to_num(stds),
            capsize=3,
            color=[colors[i % len(colors)] for i in range(len(names))],
            error_kw={"elinewidth": 0.8},
        )
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"{k} ({'lower' if k in LOWER_IS_BETTER else 'higher'} is better)", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _content_bounds(x: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of ``x`` without constant border rows / columns (TNO's black frames)."""
    rows = np.flatnonzero(x.std(axis=1) > 1.0)
    cols = np.flatnonzero(x.std(axis=0) > 1.0)
    if len(rows) < 8 or len(cols) < 8:
        return 0, x.shape[0], 0, x.shape[1]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def choose_zoom_box(ir: np.ndarray, fraction: float = 0.2) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of a square box (side ``fraction`` of the shorter image side) centred where the infrared
    image is most salient: where it is most warmer (brighter) than its surroundings. The saliency map is the
    squared positive part of ``I - gaussian(I, sigma=side)``, smoothed at a quarter of the side, on the image
    without constant border rows / columns; the box stays inside the image. Hot targets (people, vehicles) win."""
    from scipy import ndimage

    x = np.asarray(ir, dtype=np.float64)
    if x.ndim == 3:
        x = x.mean(axis=2)
    h, w = x.shape
    s = int(min(h, w, max(4, round(min(h, w) * fraction))))
    top, bottom, left, right = _content_bounds(x)
    c = x[top:bottom, left:right]
    warmer = np.maximum(c - ndimage.gaussian_filter(c, s, mode="reflect"), 0.0) ** 2
    score = np.zeros_like(x)
    score[top:bottom, left:right] = ndimage.gaussian_filter(warmer, max(1.0, s / 4), mode="constant")
    margin = s // 2  # centres at which the whole box fits
    inner = score[margin : h - (s - margin) + 1, margin : w - (s - margin) + 1]
    y0, x0 = np.unravel_index(int(np.argmax(inner)), inner.shape)  # inner[0, 0] is the box at the top-left
    return int(x0), int(y0), s, s


def _box_from_fractions(box: Sequence[float], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(box) != 4 or any(not 0.0 <= float(v) <= 1.0 for v in box):
        raise ConfigError(f"zoom_box: expected 4 fractions x y w h in 0..1, got {list(box)}")
    h, w = shape[:2]
    bw, bh = max(2, round(box[2] * w)), max(2, round(box[3] * h))
    x0, y0 = min(round(box[0] * w), w - bw), min(round(box[1] * h), h - bh)
    return max(0, x0), max(0, y0), min(bw, w), min(bh, h)


def _rgb(img: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(img)).convert("RGB")


def add_zoom(
    img: np.ndarray, box: tuple[int, int, int, int], color=(255, 0, 0), scale: float | None = None
) -> np.ndarray:
    """RGB copy of ``img`` with ``box`` drawn on it and the box's crop, enlarged (nearest neighbour) to about 40 %
    of the image width, pasted in the corner farthest from the box."""
    im = _rgb(img)
    w, h = im.size
    x0, y0, bw, bh = box
    lw = max(1, round(min(w, h) / 150))
    crop = im.crop((x0, y0, x0 + bw, y0 + bh))
    if scale is None:
        scale = max(1.0, min(0.4 * w / bw, 0.45 * h / bh))
    cw, ch = max(1, round(bw * scale)), max(1, round(bh * scale))
    crop = crop.resize((cw, ch), Image.NEAREST)
    cx, cy = x0 + bw / 2, y0 + bh / 2
    px = 0 if cx > w / 2 else w - cw
    py = 0 if cy > h / 2 else h - ch
    im.paste(crop, (px, py))
    draw = ImageDraw.Draw(im)
    draw.rectangle([x0, y0, x0 + bw - 1, y0 + bh - 1], outline=color, width=lw)
    draw.rectangle([px, py, px + cw - 1, py + ch - 1], outline=color, width=lw)
    return np.asarray(im)


def make_grid(
    grid: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    path: str | Path,
    zoom: bool = True,
    zoom_box: Sequence[float] = (),
    title: str = "",
) -> Path | None:
    """Comparison grid PNG: one row per entry of ``grid`` (``name``, ``ir``, ``vi``, ``fused``: ``{method: img}``),
    columns infrared, visible and each method; with ``zoom`` a box (``zoom_box`` fractions x y w h, or
    :func:`choose_zoom_box` on the infrared image) drawn on every tile and its enlarged crop in a corner.
    A method without an output for a row gets an empty tile marked "missing". ``None`` when ``grid`` is empty."""
    if not grid:
        return None
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["infrared", "visible", *methods]
    tile_w = 2.6
    heights = [tile_w * r["ir"].shape[0] / r["ir"].shape[1] for r in grid]
    fig, axes = plt.subplots(
        len(grid),
        len(columns),
        figsize=(tile_w * len(columns), sum(heights) + 0.35 * len(grid) + 0.4),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for i, row in enumerate(grid):
        box = None
        if zoom:
            box = _box_from_fractions(zoom_box, row["ir"].shape) if len(zoom_box) else choose_zoom_box(row["ir"])
        images = [row["ir"], row["vi"], *[row["fused"].get(m) for m in methods]]
        for j, (ax, img) in enumerate(zip(axes[i], images)):
            ax.set_xticks([])
            ax.set_yticks([])
            if img is None:
                ax.imshow(np.full((*row["ir"].shape[:2], 3), 235, np.uint8))
                ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes, color="gray")
            else:
                ax.imshow(add_zoom(img, box) if box else np.asarray(_rgb(img)), interpolation="antialiased")
            if i == 0:
                ax.set_title(columns[j], fontsize=10)
            if j == 0:
                ax.set_ylabel(str(row["name"]), fontsize=9)
            for spine in ax.spines.values():
                spine.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.4, w_pad=0.2, h_pad=0.4)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------------------------
# the whole evaluation
# ----------------------------------------------------------------------------------------------------------------

PER_IMAGE_FIELDS = ["dataset", "method", "image", *METRIC_KEYS, "seconds"]
FAILURE_FIELDS = ["dataset", "method", "image", "error"]


@dataclass
class EvalResult:
    out: Path
    rows: list[dict[str, Any]]
    failures: list[dict[str, str]]
    notes: list[str]
    summaries: dict[str, list[dict[str, Any]]]  # dataset -> summary rows
    markdown: str  # every dataset's tables
    files: list[Path]
    wall_seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.8g}"
    return v


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """``rows`` as CSV with the columns ``fields``; floats to 8 significant digits, NaN/inf as empty cells."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_value(r.get(k, "")) for k in fields})
    return path


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


SUMMARY_FIELDS = [
    "method",
    "n",
    *[f"{k}_{s}" for k in METRIC_KEYS for s in ("mean", "std")],
    *[f"{k}_rank" for k in METRIC_KEYS],
    "avg_rank",
    "ms_per_image",
]


def evaluate(
    methods: str | Iterable[str | Method] = ("ours", "average", "max"),
    datasets: str | Iterable[str | Dataset] = ("tno42", "roadscene50_cddfuse", "msrs_test"),
    out: str | Path = "runs/eval",
    *,
    data_root: str | Path = "../shared/data",
    weights: str | Path = "",
    device: str = "cpu",
    data_cfg: Mapping[str, Any] | None = None,
    fuser: Callable[..., np.ndarray] | None = None,
    limit: int = 0,
    grid_images: int = 4,
    grid_names: Sequence[str] = (),
    zoom: bool = True,
    zoom_box: Sequence[float] = (),
    save_fused: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> EvalResult:
    """Evaluate ``methods`` on ``datasets`` and write everything to ``out``:

    * ``per_image.csv``: dataset, method, image, the ten metrics, seconds (fusion time; empty for folder methods)
    * ``failures.csv`` + ``failures.json``: every pair or (method, pair) that was skipped, with the reason
    * ``summary.md``: every dataset's tables; ``eval.json``: settings, notes and counts
    * ``<dataset>/summary.md`` + ``summary.csv``, ``<dataset>/bars.png``, ``<dataset>/grid.png``
    * with ``save_fused``: ``fused/<dataset>/<method>/<pair>.png``

    Methods and datasets are resolved (and the weights loaded) before anything runs, so a wrong name fails at once.
    """
    started = time.perf_counter()
    method_items = [methods] if isinstance(methods, str) else list(methods)
    if method_items and all(isinstance(m, Method) for m in method_items):
        method_list: list[Method] = method_items  # type: ignore[assignment]
    else:
        method_list = parse_methods(method_items)  # type: ignore[arg-type]
    dataset_items = [datasets] if isinstance(datasets, str) else list(datasets)
    if dataset_items and all(isinstance(d, Dataset) for d in dataset_items):
        dataset_list: list[Dataset] = dataset_items  # type: ignore[assignment]
    else:
        dataset_list = resolve_datasets(dataset_items, data_root)  # type: ignore[arg-type]
    for m in method_list:  # a folder without placeholders must exist (a templated one may be absent: skipped)
        if m.kind == "folder" and not m.templated and not m.folder_for("", data_root).is_dir():
            raise ConfigError(f"method {m.name}: folder {m.folder} does not exist")
    if zoom_box and len(zoom_box):
        _box_from_fractions(zoom_box, (100, 100))  # validate early
    if any(m.kind == "ours" for m in method_list) and fuser is None:
        from ..inference.fuser import Fuser
        from ..nn.checkpoint import load_model

        fuser = Fuser(load_model(weights or None, device), data_cfg, device)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    notes: list[str] = []
    summaries: dict[str, list[dict[str, Any]]] = {}
    files: list[Path] = []
    markdown_parts: list[str] = []
    n_pairs: dict[str, int] = {}
    for ds in dataset_list:
        run = run_dataset(
            ds,
            method_list,
            data_root=data_root,
            fuser=fuser,
            data_cfg=data_cfg,
            limit=limit,
            grid_images=grid_images,
            grid_names=grid_names,
            save_fused=(out / "fused" / ds.name) if save_fused else None,
            progress=progress,
            log=log,
        )
        rows += run.rows
        failures += run.failures
        notes += run.notes
        n_pairs[ds.name] = run.n_pairs
        names = [m.name for m in run.methods]
        summary = summarise(run.rows, names)
        summaries[ds.name] = summary
        md = summary_markdown(summary, title=ds.name, n_pairs=run.n_pairs)
        markdown_parts.append(md)
        ds_out = out / ds.name
        ds_out.mkdir(parents=True, exist_ok=True)
        files.append(ds_out / "summary.md")
        files[-1].write_text(md, encoding="utf-8")
        files.append(write_csv(ds_out / "summary.csv", SUMMARY_FIELDS, summary))
        if summary:
            files.append(plot_bars(summary, ds_out / "bars.png", title=f"{ds.name} ({run.n_pairs} pairs)"))
        grid_path = make_grid(run.grid, names, ds_out / "grid.png", zoom=zoom, zoom_box=zoom_box, title=ds.name)
        if grid_path:
            files.append(grid_path)

    markdown = "\n".join(markdown_parts)
    files.insert(0, write_csv(out / "per_image.csv", PER_IMAGE_FIELDS, rows))
    files.insert(1, write_csv(out / "failures.csv", FAILURE_FIELDS, failures))
    (out / "failures.json").write_text(json.dumps(failures, indent=2), encoding="utf-8")
    files.insert(2, out / "failures.json")
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    files.insert(3, out / "summary.md")
    wall = time.perf_counter() - started
    info = {
        "methods": [{"name": m.name, "kind": m.kind, "folder": m.folder} for m in method_list],
        "datasets": [{"name": d.name, "root": str(d.root), "pairs": n_pairs.get(d.name, 0)} for d in dataset_list],
        "data_root": str(data_root),
        "weights": str(weights) if weights else "(shipped)",
        "device": device,
        "limit": limit,
        "n_results": len(rows),
        "n_failures": len(failures),
        "notes": notes,
        "wall_seconds": round(wall, 3),
    }
    (out / "eval.json").write_text(json.dumps(_json_safe(info), indent=2), encoding="utf-8")
    files.insert(4, out / "eval.json")
    return EvalResult(out, rows, failures, notes, summaries, markdown, files, wall)
