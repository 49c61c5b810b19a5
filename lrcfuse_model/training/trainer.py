"""Training that can stop anywhere and resume exactly.

A run writes to ``train.out``:

* ``last.pt``: checkpoint (model, optimizer, scheduler, step, RNG states, config), every
  ``save_every`` steps, at the end, when the wall-time budget runs out, and on Ctrl-C / SIGTERM;
* ``loss.csv``: every loss term (raw) and the weighted total, every ``log_every`` steps;
* ``loss_curves.png``: one panel per term, like Fig. 17 of the LRCFuse paper (both: :mod:`.loss_log`);
* ``weights.pt``: the trained model as a weights file (what ``lrcfuse fuse --weights`` reads).

``--resume PATH`` (or ``auto``) restores all of it, and because each batch is a pure function of
``(seed, step)`` (:class:`~lrcfuse_model.training.data.PatchSampler`), N steps + resume + N steps gives
the same weights as 2N steps in one go.
"""

from __future__ import annotations

import logging
import math
import pickle
import random
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..nn.checkpoint import build_model, load_model, model_name, save_weights
from ..nn.loss import FusionLoss
from ..nn.model import count_parameters
from .data import PatchSampler, collect_pairs
from .loss_log import LossLog, plot_loss_curves

log = logging.getLogger(__name__)


def _rng_state() -> dict[str, Any]:
    # numpy's key array is stored as a tensor: a pickled ndarray would make the checkpoint
    # unloadable with torch.load(weights_only=True), i.e. by `load_model` / `fuse --weights`.
    kind, key, *rest = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(key.astype(np.int64)), *rest)
    return {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, key, *rest = state["numpy"]
    if isinstance(key, torch.Tensor):
        key = key.cpu().numpy().astype(np.uint32)
    np.random.set_state((kind, key, *rest))
    random.setstate(state["python"])


def _lr_lambda(schedule: str, steps: int):
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    raise ValueError(f"train.lr_schedule must be 'constant' or 'cosine', got {schedule!r}")


class Trainer:
    """Builds model, loss, data and optimizer from a resolved config and runs the loop."""

    def __init__(self, cfg: Mapping[str, Any], sampler: PatchSampler | None = None) -> None:
        self.cfg = cfg
        t = cfg["train"]
        self.out = Path(t["out"])
        if t["threads"]:
            torch.set_num_threads(int(t["threads"]))
        torch.manual_seed(t["seed"])
        self.device = torch.device(t["device"])
        self.model = build_model(t["architecture"], cfg).to(self.device)
        self.loss = FusionLoss(cfg["loss"]).to(self.device)
        if self.loss.features is None:
            log.warning("loss.feature_net is 'none': training WITHOUT the perceptual terms (pixel + sobel only)")
        if sampler is None:
            if not t["data"]:
                raise ValueError("no training data: give --data DIR (a folder with ir/ and vi/), one or more")
            pairs, problems = collect_pairs(t["data"], t["exclude"])
            for p in problems:
                log.warning("unpaired file skipped: %s", p)
            sampler = PatchSampler(pairs, cfg["data"], t["patch_size"])
        self.sampler = sampler
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t["lr"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(t["lr_schedule"], t["steps"]))
        self.loss_log = LossLog(self.out / "loss.csv")
        self.step = 0
        self.elapsed = 0.0
        self._stop_signal: int | None = None

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self) -> Path:
        return self.out / "last.pt"

    def save_checkpoint(self, path: Path | None = None) -> Path:
        path = path or self.checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "format": "lrcfuse-checkpoint-v1",
                "step": self.step,
                "elapsed_s": self.elapsed,
                "architecture": model_name(self.model),
                "model_config": self.model.config.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": _rng_state(),
                "config": dict(self.cfg),
            },
            tmp,
        )
        tmp.replace(path)  # never leave a half-written checkpoint behind
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        try:  # plain tensors and containers only: a checkpoint cannot run code when loaded
            blob = torch.load(path, map_location=self.device, weights_only=True)
        except pickle.UnpicklingError:
            # Checkpoints of lrcfuse < 0.1.0 pickled numpy's RNG state; read those the old way.
            log.warning("%s holds pickled numpy state; loading it as a trusted file", path)
            blob = torch.load(path, map_location=self.device, weights_only=False)
        if blob.get("format") != "lrcfuse-checkpoint-v1":
            raise ValueError(f"{path} is not an lrcfuse training checkpoint (format {blob.get('format')!r})")
        if blob.get("architecture", "lrcfuse") != model_name(self.model):
            raise ValueError(
                f"{path} trains the architecture {blob.get('architecture', 'lrcfuse')!r}, "
                f"but this run asks for {model_name(self.model)!r} (train.architecture)"
            )
        if blob["model_config"] != self.model.config.to_dict():
            raise ValueError(
                f"{path} was trained with model config {blob['model_config']}, "
                f"but this run asks for {self.model.config.to_dict()}"
            )
        self.model.load_state_dict(blob["model"])
        self.optimizer.load_state_dict(blob["optimizer"])
        self.scheduler.load_state_dict(blob["scheduler"])
        _set_rng_state({**blob["rng"], "torch": blob["rng"]["torch"].cpu()})
        self.step = int(blob["step"])
        self.elapsed = float(blob.get("elapsed_s", 0.0))
        self.loss_log.truncate(self.step)  # rows after the checkpoint will be written again
        log.info("resumed from %s at step %d", path, self.step)

    # -- the loop --------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self._stop_signal = signum

    def train_step(self) -> tuple[float, dict[str, float]]:
        t = self.cfg["train"]
        ir, vi = self.sampler.batch(self.step, t["batch_size"], t["seed"])
        ir, vi = ir.to(self.device), vi.to(self.device)
        self.model.train()
        fused = self.model(ir, vi)
        total, terms = self.loss(fused, ir, vi)
        if not torch.isfinite(total):
            values = {k: v.item() for k, v in terms.items()}
            raise FloatingPointError(
                f"loss is {total.item()} at step {self.step} (terms {values}); last checkpoint kept"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t["grad_clip"])
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return float(total.detach()), {k: float(v.detach()) for k, v in terms.items()}

    def run(self, show_progress: bool = True) -> dict[str, Any]:
        """Train until ``train.steps`` or the time budget; returns a summary dict."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._resume()
        stop_reason = self._loop(show_progress)
        weights = self._save_weights()
        png = plot_loss_curves(self.loss_log.path, self.out / "loss_curves.png")
        summary = {
            "step": self.step,
            "stopped_by": stop_reason,
            "elapsed_s": round(self.elapsed, 1),
            "checkpoint": str(self.checkpoint_path()),
            "weights": str(weights),
            "loss_csv": str(self.loss_log.path),
            "loss_png": str(png) if png else None,
            "parameters": count_parameters(self.model),
            "training_pairs": len(self.sampler),
        }
        log.info("training stopped (%s) at step %d after %.0f s", stop_reason, self.step, self.elapsed)
        return summary

    def _resume(self) -> None:
        """``train.resume``: a checkpoint path, or ``auto`` (``last.pt`` of this run, when there is one);
        without a checkpoint to resume, ``train.init`` gives the starting weights."""
        t = self.cfg["train"]
        resume = t["resume"]
        if resume:
            path = self.checkpoint_path() if resume == "auto" else Path(resume)
            if resume != "auto" or path.is_file():
                self.load_checkpoint(path)
                return
        if t["init"]:
            self._init_from(t["init"])

    def _init_from(self, weights: str) -> None:
        """Start from a weights file (or a shipped model's name) of this run's architecture and sizes."""
        start = load_model(weights)
        if model_name(start) != model_name(self.model) or start.config.to_dict() != self.model.config.to_dict():
            raise ValueError(
                f"train.init {weights} is {model_name(start)} {start.config.to_dict()}, "
                f"but this run trains {model_name(self.model)} {self.model.config.to_dict()}"
            )
        self.model.load_state_dict(start.state_dict())
        log.info("starting from the weights of %s", weights)

    def _loop(self, show_progress: bool) -> str:
        """Train steps until ``train.steps``, a stop signal or the time budget, logging and checkpointing on the way;
        the checkpoint is saved when the loop ends, however it ends. Returns why it stopped."""
        t = self.cfg["train"]
        self.loss_log.open()
        budget_s = t["time_budget"] * 60.0
        started, elapsed0 = time.monotonic(), self.elapsed
        old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        stop_reason = "steps"
        bar = tqdm(
            total=t["steps"],
            initial=self.step,
            desc="train",
            unit="step",
            disable=not show_progress,
            dynamic_ncols=True,
        )
        try:
            while self.step < t["steps"]:
                total, terms = self.train_step()
                self.elapsed = elapsed0 + time.monotonic() - started
                bar.update(1)
                if self.step % t["log_every"] == 0 or self.step == t["steps"]:
                    self.loss_log.write(self.step, total, terms, self.scheduler.get_last_lr()[0], self.elapsed)
                    bar.set_postfix(loss=f"{total:.4f}")
                if self.step % t["save_every"] == 0:
                    self.save_checkpoint()
                reason = self._stop_reason(budget_s, elapsed0)
                if reason:
                    stop_reason = reason
                    break
        finally:
            bar.close()
            self.loss_log.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
            self.save_checkpoint()
        return stop_reason

    def _stop_reason(self, budget_s: float, elapsed0: float) -> str | None:
        """Why to stop now: the name of a caught signal, ``time_budget`` when it is spent, else ``None``."""
        if self._stop_signal is not None:
            return signal.Signals(self._stop_signal).name
        if budget_s and self.elapsed - elapsed0 >= budget_s:
            return "time_budget"
        return None

    def _save_weights(self) -> Path:
        """``weights.pt``: the trained model as a weights file, with what it was trained on."""
        t = self.cfg["train"]
        return save_weights(
            self.model,
            self.out / "weights.pt",
            meta={
                "steps": self.step,
                "train_seconds": round(self.elapsed, 1),
                "loss": dict(self.cfg["loss"]),
                "data": [str(d) for d in t["data"]],
                "excluded": [str(d) for d in t["exclude"]],
                "batch_size": t["batch_size"],
                "patch_size": t["patch_size"],
                "lr": t["lr"],
                "init": t["init"],
            },
        )
