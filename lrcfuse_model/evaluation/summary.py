"""The summary numbers of an evaluation: per method, the mean and std of each metric, ranks and the average rank.

Ranks as in the LRCFuse paper: per metric, 1 = best (Nabf: lower is better, every other metric higher), ties share
the mean rank, and the average rank is the mean over the ten metrics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .metrics import METRIC_KEYS

__all__ = ["LOWER_IS_BETTER", "rank_table", "summarise"]

LOWER_IS_BETTER: frozenset[str] = frozenset({"Nabf"})


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
