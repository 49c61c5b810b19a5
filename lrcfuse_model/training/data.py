"""Training data: paired folders -> random 128 x 128 patches with flips.

All pairs are decoded once through the shared preprocessing path (:func:`prepare_pair`: thermal
normalisation, visible -> Y) and kept in memory as float32; the training sets used here are a few
hundred pairs. Each batch is drawn by a generator seeded with ``(seed, step)``, so the batch of
step ``s`` does not depend on what ran before: resuming at step ``s`` sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..images.pairing import Pair, Unpaired, dataset_pairs
from ..images.preprocess import InputError, prepare_pair, read_image, resize_float

log = logging.getLogger(__name__)


def collect_pairs(
    folders: Sequence[str | Path], exclude: Iterable[str | Path] = ()
) -> tuple[list[Pair], list[Unpaired]]:
    """Pairs of every training folder, minus those named in the ``exclude`` folders' ``ir/``."""
    held_out: set[str] = set()
    for folder in exclude:
        pairs, _ = dataset_pairs(folder)
        held_out.update(p.name for p in pairs)
    all_pairs: list[Pair] = []
    problems: list[Unpaired] = []
    for folder in folders:
        pairs, probs = dataset_pairs(folder)
        all_pairs += [p for p in pairs if p.name not in held_out]
        problems += probs
    return all_pairs, problems


class PatchSampler:
    """Random patch batches (N x 1 x P x P thermal and visible-Y tensors) from in-memory pairs."""

    def __init__(self, pairs: Sequence[Pair], data_cfg: Mapping[str, Any], patch_size: int = 128) -> None:
        self.patch = patch_size
        self.images: list[tuple[np.ndarray, np.ndarray]] = []
        self.names: list[str] = []
        self.failed: list[str] = []
        for pair in pairs:
            try:
                prepared = prepare_pair(
                    read_image(pair.ir), read_image(pair.vi), data_cfg, (str(pair.ir), str(pair.vi))
                )
            except InputError as exc:
                self.failed.append(str(exc))
                log.warning("skipping training pair %s: %s", pair.name, exc)
                continue
            ir, vi = prepared.ir, prepared.vi_y
            if min(ir.shape) < patch_size:  # upscale small images so a full patch fits
                scale = patch_size / min(ir.shape)
                size = (int(np.ceil(ir.shape[0] * scale)), int(np.ceil(ir.shape[1] * scale)))
                ir, vi = resize_float(ir, size), resize_float(vi, size)
            self.images.append((ir, vi))
            self.names.append(pair.name)
        if not self.images:
            raise ValueError("no usable training pairs" + (f": {self.failed[:3]}" if self.failed else ""))

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, step: int, batch_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of training step ``step`` (a pure function of ``seed`` and ``step``)."""
        rng = np.random.default_rng([seed, step])
        p = self.patch
        irs = np.empty((batch_size, 1, p, p), np.float32)
        vis = np.empty_like(irs)
        for b in range(batch_size):
            ir, vi = self.images[rng.integers(len(self.images))]
            y = rng.integers(ir.shape[0] - p + 1)
            x = rng.integers(ir.shape[1] - p + 1)
            ir_p, vi_p = ir[y : y + p, x : x + p], vi[y : y + p, x : x + p]
            if rng.random() < 0.5:
                ir_p, vi_p = ir_p[:, ::-1], vi_p[:, ::-1]
            if rng.random() < 0.5:
                ir_p, vi_p = ir_p[::-1], vi_p[::-1]
            irs[b, 0], vis[b, 0] = ir_p, vi_p
        return torch.from_numpy(irs), torch.from_numpy(vis)
