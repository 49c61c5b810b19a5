"""The loss log of a training run: ``loss.csv`` (every loss term, raw, and the weighted total, every
``log_every`` steps) and ``loss_curves.png`` drawn from it (one panel per term, like Fig. 17 of the LRCFuse paper).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

from ..nn.loss import TERMS
from ..reporting import pyplot

CSV_FIELDS = ["step", "total", *TERMS, "lr", "elapsed_s"]


class LossLog:
    """``loss.csv`` of a run: rows appended while training, cut back to a checkpoint's step on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._writer: csv.DictWriter | None = None

    def truncate(self, step: int) -> None:
        """Drop rows written after ``step`` (a resumed run writes them again)."""
        if not self.path.is_file():
            return
        rows = [r for r in csv.DictReader(open(self.path, encoding="utf-8")) if int(r["step"]) <= step]
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def open(self) -> None:
        """Open for appending; a new file gets the header."""
        new_log = not self.path.is_file()
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=CSV_FIELDS)
        if new_log:
            self._writer.writeheader()

    def write(self, step: int, total: float, terms: Mapping[str, float], lr: float, elapsed_s: float) -> None:
        """One row, flushed (a run that is killed keeps its log)."""
        assert self._writer is not None and self._file is not None, "LossLog.open() first"
        self._writer.writerow(
            {
                "step": step,
                "total": f"{total:.6g}",
                **{k: f"{v:.6g}" for k, v in terms.items()},
                "lr": f"{lr:.3g}",
                "elapsed_s": f"{elapsed_s:.1f}",
            }
        )
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None


def plot_loss_curves(csv_path: str | Path, png_path: str | Path) -> Path | None:
    """One panel per loss term (raw value) and the weighted total against the step."""
    plt = pyplot()
    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    if not rows:
        return None
    steps = np.array([int(r["step"]) for r in rows])
    names = ["total", *TERMS]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for ax, name in zip(axes.flat, names):
        values = np.array([float(r[name]) for r in rows])
        ax.plot(steps, values, lw=0.8, alpha=0.35, color="tab:blue")
        if len(values) >= 10:  # a moving average makes the trend readable through batch noise
            k = max(len(values) // 25, 3)
            smooth = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, lw=1.6, color="tab:red")
        ax.set_title(name if name == "total" else f"L_{name}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"LRCFuse training losses ({csv_path})")
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)
