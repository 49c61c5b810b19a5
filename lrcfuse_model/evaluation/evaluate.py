"""``lrcfuse eval``: evaluate fusion methods on paired datasets and write the report.

:func:`evaluate` resolves the methods and datasets (:mod:`~lrcfuse_model.evaluation.methods`; a wrong name fails
before anything runs), scores every method on every pair (:mod:`~lrcfuse_model.evaluation.scoring`), summarises each
dataset (:mod:`~lrcfuse_model.evaluation.summary`: means, stds, ranks) and writes tables, bar charts and comparison
grids (:mod:`~lrcfuse_model.evaluation.report`). Each step is also a function of its own module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError
from ..reporting import box_from_fractions, json_safe, write_json
from .methods import Dataset, Method, fusers_for, parse_methods, resolve_datasets
from .report import write_dataset_report, write_run_report
from .scoring import run_dataset
from .summary import summarise

__all__ = ["EvalResult", "evaluate"]


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


def evaluate(
    methods: str | Iterable[str | Method] = ("ours", "average", "max"),
    datasets: str | Iterable[str | Dataset] = ("tno42", "roadscene50_cddfuse", "msrs_test"),
    out: str | Path = "runs/eval",
    *,
    data_root: str | Path = "../shared/data",
    weights: str | Path = "",
    device: str = "cpu",
    data_cfg: Mapping[str, Any] | None = None,
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None = None,
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
        box_from_fractions(zoom_box, (100, 100))  # validate early
    if any(m.kind == "ours" for m in method_list) and fuser is None:
        fuser = fusers_for(method_list, weights, device, data_cfg)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    notes: list[str] = []
    summaries: dict[str, list[dict[str, Any]]] = {}
    dataset_files: list[Path] = []
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
        summaries[ds.name] = summarise(run.rows, names)
        md, written = write_dataset_report(
            out, ds.name, run.n_pairs, summaries[ds.name], run.grid, names, zoom=zoom, zoom_box=zoom_box
        )
        markdown_parts.append(md)
        dataset_files += written

    markdown = "\n".join(markdown_parts)
    files = write_run_report(out, rows, failures, markdown)
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
    files.append(write_json(out / "eval.json", json_safe(info)))
    return EvalResult(out, rows, failures, notes, summaries, markdown, files + dataset_files, wall)
