"""What ``lrcfuse eval`` writes: the summary tables in Markdown and CSV, bar charts, comparison grids, the per-image
scores and the failures (the figures and file formats come from :mod:`lrcfuse_model.reporting`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..reporting import bar_panels, cell, make_grid, markdown_table, write_csv, write_json
from .metrics import METRIC_KEYS
from .summary import LOWER_IS_BETTER

__all__ = [
    "FAILURE_FIELDS",
    "PER_IMAGE_FIELDS",
    "SUMMARY_FIELDS",
    "plot_bars",
    "summary_markdown",
    "write_dataset_report",
    "write_run_report",
]

PER_IMAGE_FIELDS = ["dataset", "method", "image", *METRIC_KEYS, "seconds"]
FAILURE_FIELDS = ["dataset", "method", "image", "error"]
SUMMARY_FIELDS = [
    "method",
    "n",
    *[f"{k}_{s}" for k in METRIC_KEYS for s in ("mean", "std")],
    *[f"{k}_rank" for k in METRIC_KEYS],
    "avg_rank",
    "ms_per_image",
]


def _num(v: float, key: str = "") -> str:
    return cell(v, ".4f" if key == "Nabf" else ".3f")


def _ms(v: float) -> str:
    return cell(v, ".1f" if v is not None and v >= 10 else ".2f")


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
    best = {k: _best([r[f"{k}_mean"] for r in summary], k in LOWER_IS_BETTER) for k in METRIC_KEYS}
    best_rank = _best([r["avg_rank"] for r in summary], True)
    rows = []
    for r in summary:
        cells = [str(r["method"]), str(r["n"])]
        for k in METRIC_KEYS:
            mean_std = f"{_num(r[f'{k}_mean'], k)} ± {_num(r[f'{k}_std'], k)}"
            cells.append(f"**{mean_std}**" if r[f"{k}_mean"] == best[k] else mean_std)
        rank = f"{r['avg_rank']:.2f}"
        cells += [f"**{rank}**" if r["avg_rank"] == best_rank else rank, _ms(r["ms_per_image"])]
        rows.append(cells)
    lines += markdown_table(heads, rows)
    lines += ["", "Ranks per metric (1 = best; ties share the mean rank):", ""]
    rank_rows = [
        [str(r["method"]), *[cell(r[f"{k}_rank"], "g") for k in METRIC_KEYS], f"{r['avg_rank']:.2f}"] for r in summary
    ]
    lines += markdown_table(["method", *METRIC_KEYS, "avg rank"], rank_rows)
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


def plot_bars(summary: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """One PNG, a subplot per metric: each method's mean with a ±std error bar (Nabf: lower is better)."""
    return bar_panels(summary, METRIC_KEYS, path, title, LOWER_IS_BETTER)


def write_dataset_report(
    out: Path,
    dataset: str,
    n_pairs: int,
    summary: Sequence[Mapping[str, Any]],
    grid: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    zoom: bool = True,
    zoom_box: Sequence[float] = (),
) -> tuple[str, list[Path]]:
    """``out/<dataset>/``: ``summary.md``, ``summary.csv``, ``bars.png`` (when a method scored) and ``grid.png``
    (when there are grid rows). Returns the Markdown and the files written."""
    markdown = summary_markdown(summary, title=dataset, n_pairs=n_pairs)
    folder = out / dataset
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "summary.md"]
    files[-1].write_text(markdown, encoding="utf-8")
    files.append(write_csv(folder / "summary.csv", SUMMARY_FIELDS, summary))
    if summary:
        files.append(plot_bars(summary, folder / "bars.png", title=f"{dataset} ({n_pairs} pairs)"))
    grid_path = make_grid(grid, methods, folder / "grid.png", zoom=zoom, zoom_box=zoom_box, title=dataset)
    if grid_path:
        files.append(grid_path)
    return markdown, files


def write_run_report(
    out: Path, rows: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, str]], markdown: str
) -> list[Path]:
    """``out/``: ``per_image.csv``, ``failures.csv`` + ``failures.json`` and ``summary.md`` (every dataset's tables)."""
    files = [write_csv(out / "per_image.csv", PER_IMAGE_FIELDS, rows)]
    files.append(write_csv(out / "failures.csv", FAILURE_FIELDS, failures))
    files.append(write_json(out / "failures.json", failures))
    files.append(out / "summary.md")
    files[-1].write_text(markdown, encoding="utf-8")
    return files
