"""What every inference backend is: the :class:`Backend` interface and the checks all of them share.

Kept apart from :mod:`lrcfuse_model.inference.backends` (which builds backends by name) so that a backend
living in a module of its own (:mod:`lrcfuse_model.inference.openvino_backend`) needs nothing that
imports it back.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path

import numpy as np


def network_inputs(ir: np.ndarray, vi_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check the two preprocessed arrays and return them as float32 ``1 x 1 x H x W``."""
    if ir.ndim != 2 or vi_y.ndim != 2 or ir.shape != vi_y.shape:
        raise ValueError(
            f"backend inputs must be two H x W arrays of the same size (from preprocess.prepare_pair), "
            f"got thermal {ir.shape} and visible {vi_y.shape}"
        )
    if min(ir.shape) < 2:
        raise ValueError(f"backend inputs must be at least 2 x 2 pixels, got {ir.shape}")
    as_input = lambda a: np.ascontiguousarray(a, dtype=np.float32)[None, None]  # noqa: E731
    return as_input(ir), as_input(vi_y)


class Backend(abc.ABC):
    """One way of running the network: ``fuse(ir, vi_y) -> fused`` on preprocessed arrays."""

    name: str = ""
    device: str = "cpu"

    @abc.abstractmethod
    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        """Thermal + visible Y, float32 ``H x W`` in [0, 1] -> raw float32 ``H x W`` network output."""

    def warmup(self, size_hw: tuple[int, int] = (512, 640), runs: int = 2) -> None:
        """Run the network ``runs`` times on a synthetic frame (allocations, kernel choice, caches)."""
        h, w = size_hw
        ramp = np.linspace(0.0, 1.0, h * w, dtype=np.float32).reshape(h, w)
        for _ in range(runs):
            self.fuse(ramp, ramp[::-1].copy())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device!r})"


def cpu_threads(threads: int, hint: str) -> int:
    """The CPU threads a backend runs with: ``threads`` when given (not 0); else the export's
    ``lrcfuse.cpu_threads`` hint (``hint``, '' when none) when it asks for fewer than the cores, since
    0 means "what suits this network" (LRCFuse-RT: its operators are too small to share, see
    nn/rt_model.py); else every core."""
    cores = os.cpu_count() or 1
    if threads:
        return threads
    return int(hint) if hint.isdigit() and 0 < int(hint) < cores else cores


def check_io_names(path: Path, inputs: list[str], outputs: list[str]) -> None:
    """An lrcfuse export has inputs ``ir``, ``vi`` and output ``fused``; else a ValueError naming ``path``."""
    if (inputs, outputs) != (["ir", "vi"], ["fused"]):
        raise ValueError(
            f"{path}: expected inputs ['ir', 'vi'] and output ['fused'] (an lrcfuse export), "
            f"got inputs {inputs} and outputs {outputs}"
        )
