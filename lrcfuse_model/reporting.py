"""Writing results down: CSV and JSON files, Markdown tables, bar charts, PR curves and image comparison grids.

One module for every report of the package: ``lrcfuse eval`` (:mod:`lrcfuse_model.evaluation.report`),
``lrcfuse detect-eval`` (:mod:`lrcfuse_model.detection.report`), ``lrcfuse bench``, ``lrcfuse fuse`` and
``fuse-bag`` (their JSON reports) and the training loss curves. It knows nothing about metrics or detectors: callers
pass the keys, rows and curves. matplotlib is imported only when a figure is drawn, with the ``Agg`` backend.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw

from .config import ConfigError

# ----------------------------------------------------------------------------------------------------------------
# files and cells
# ----------------------------------------------------------------------------------------------------------------


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


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` as indented JSON (2 spaces, UTF-8) in ``path``, its folder made if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def json_safe(v: Any) -> Any:
    """``v`` with NaN/inf floats as ``None`` and paths as strings, in nested dicts and lists (strict JSON)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def cell(value: float | None, spec: str) -> str:
    """A table cell: ``value`` formatted with ``spec``, or ``n/a`` for ``None``, NaN and infinity."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return format(value, spec)


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``0.4567`` -> ``45.7``), or ``n/a``."""
    return cell(None if value is None else 100 * value, ".1f")


def markdown_table(heads: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: the header, the separator and one line per row of cells."""
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return lines


def spaced_indices(n: int, count: int) -> list[int]:
    """Up to ``count`` indices evenly spread over ``range(n)``, first and last included (grid rows)."""
    if count <= 0 or n <= 0:
        return []
    return [int(i) for i in np.unique(np.round(np.linspace(0, n - 1, min(count, n))).astype(int))]


# ----------------------------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------------------------


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive ``Agg`` backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_panels(
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    path: str | Path,
    title: str = "",
    lower_is_better: Iterable[str] = (),
    columns: int = 5,
) -> Path:
    """One PNG, a subplot per key (``columns`` per row): each row's ``<key>_mean`` with a ±``<key>_std`` error bar,
    one bar per row, labelled with its ``method``."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lower = set(lower_is_better)
    names = [str(r["method"]) for r in rows]
    colors = plt.get_cmap("tab10").colors
    n_rows = max(1, math.ceil(len(keys) / columns))
    fig, axes = plt.subplots(
        n_rows, columns, figsize=(max(12.0, 1.1 * columns * max(len(names), 1)), 3.25 * n_rows), squeeze=False
    )
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    for ax, k in zip(axes.flat, keys):
        means = np.array([r[f"{k}_mean"] for r in rows], dtype=np.float64)
        stds = np.array([r[f"{k}_std"] for r in rows], dtype=np.float64)
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
        ax.set_title(f"{k} ({'lower' if k in lower else 'higher'} is better)", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class PRCurve(Protocol):
    """One panel's curve of one input: its panel ``name`` (a class), AP@0.5 and the precision at each recall point."""

    name: str
    map50: float
    precision50: np.ndarray


def pr_curve_panels(
    results: Mapping[str, Sequence[PRCurve]], recall: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """PNG: one subplot per class (and ``all``), precision vs ``recall`` at IoU 0.5, one line per input (the keys of
    ``results``; each input's curves in the same class order)."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = [a.name for a in next(iter(results.values()), [])]
    fig, axes = plt.subplots(1, max(1, len(classes)), figsize=(3.6 * max(1, len(classes)), 3.6), squeeze=False)
    for ax, (k, cls) in zip(axes[0], enumerate(classes)):
        for name, aps in results.items():
            ax.plot(recall, aps[k].precision50, label=f"{name} ({percent(aps[k].map50)})", linewidth=1.4)
        ax.set_title(f"{cls} (AP@0.5 in legend)", fontsize=10)
        ax.set_xlabel("recall")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    axes[0][0].set_ylabel("precision (IoU 0.5)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------------------------
# image grids with a zoomed inset
# ----------------------------------------------------------------------------------------------------------------


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


def box_from_fractions(box: Sequence[float], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` in pixels of an image of ``shape`` from fractions ``x y w h`` of its width and height
    (``zoom_box``); anything but 4 fractions in 0..1 is a :class:`~lrcfuse_model.config.ConfigError`."""
    if len(box) != 4 or any(not 0.0 <= float(v) <= 1.0 for v in box):
        raise ConfigError(f"zoom_box: expected 4 fractions x y w h in 0..1, got {list(box)}")
    h, w = shape[:2]
    bw, bh = max(2, round(box[2] * w)), max(2, round(box[3] * h))
    x0, y0 = min(round(box[0] * w), w - bw), min(round(box[1] * h), h - bh)
    return max(0, x0), max(0, y0), min(bw, w), min(bh, h)


def _rgb(img: np.ndarray) -> Image.Image:
    return Image.fromarray(np.asarray(img)).convert("RGB")


def add_zoom(
    img: np.ndarray,
    box: tuple[int, int, int, int],
    color: tuple[int, int, int] = (255, 0, 0),
    scale: float | None = None,
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
    plt = pyplot()
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
            box = box_from_fractions(zoom_box, row["ir"].shape) if len(zoom_box) else choose_zoom_box(row["ir"])
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
