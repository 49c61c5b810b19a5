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

Loading a checkpoint never runs code from it: a checkpoint holds tensors and plain data only (the RNG
states too: numpy's key array as a tensor, Python's state as a tuple of ints), and is read with
``torch.load(weights_only=True)``. A file that needs anything else is refused with a message naming
what it holds (:func:`read_checkpoint`); there is no option to trust it. The one exception is the
checkpoints of lrcfuse < 0.1.0, which pickled numpy's RNG key as an ndarray: those are read with numpy's
array constructors (``ndarray``, ``dtype``, ``_reconstruct``) allowed and nothing else, which rebuilds the
array from its bytes without calling anything the file names.
"""

from __future__ import annotations

import logging
import math
import pickle
import random
import signal
import time
import zipfile
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
    torch.set_rng_state(state["torch"].cpu())
    kind, key, *rest = state["numpy"]
    if isinstance(key, torch.Tensor):
        key = key.cpu().numpy().astype(np.uint32)
    np.random.set_state((kind, key, *rest))
    random.setstate(state["python"])


CHECKPOINT_FORMAT = "lrcfuse-checkpoint-v1"
CHECKPOINT_KEYS = ("step", "model_config", "model", "optimizer", "scheduler", "rng")


def _legacy_numpy_globals() -> list[Any]:
    """numpy's array constructors under the names an ndarray pickle uses (numpy 2: ``numpy._core``,
    numpy 1: ``numpy.core``): what a checkpoint of lrcfuse < 0.1.0 needs besides tensors."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, wherever it lives
    return [
        np.ndarray,
        np.dtype,
        type(np.dtype(np.uint32)),  # numpy >= 1.25 builds the key's dtype from its class (numpy.dtypes.UInt32DType)
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
    ]


LEGACY_NUMPY_NAMES = frozenset(
    {"numpy.ndarray", "numpy.dtype", "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"}
)


def _torch_reason(exc: BaseException) -> str:
    """The line of torch's weights-only error that says what was found (not its advice to unpickle anyway)."""
    text = str(exc)
    _, marker, after = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (after if marker else text).splitlines() if line.strip()]
    return lines[0][:200] if lines else exc.__class__.__name__


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint's contents, read without running any code it may contain.

    Raises :class:`ValueError` naming the file: not a torch file, a file that needs Python objects other than
    tensors and plain data (named; loading those would run code the file chooses), or not an lrcfuse
    training checkpoint (its ``format``). See the module docstring for checkpoints of lrcfuse < 0.1.0.
    """
    path = Path(path)
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        try:
            unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except Exception:  # noqa: BLE001 - whatever the file is, it is refused below with torch's reason
            unsafe = set()
        if not unsafe:
            raise ValueError(f"{path}: not a readable training checkpoint ({_torch_reason(exc)})") from None
        if not unsafe <= LEGACY_NUMPY_NAMES:
            raise ValueError(
                f"{path}: refused: not a checkpoint of tensors and plain data (it needs {', '.join(sorted(unsafe))}); "
                "loading it would run code of the file's choosing, which lrcfuse never does. "
                "Resume from a checkpoint lrcfuse wrote"
            ) from None
        try:
            with torch.serialization.safe_globals(_legacy_numpy_globals()):
                blob = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as again:
            raise ValueError(
                f"{path}: refused: holds numpy arrays other than an RNG key of lrcfuse < 0.1.0 "
                f"({_torch_reason(again)}); resume from a checkpoint lrcfuse wrote"
            ) from None
        log.info("%s: a checkpoint of lrcfuse < 0.1.0 (numpy RNG state as an array), read without running code", path)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable training checkpoint ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(
            f"{path} is not an lrcfuse training checkpoint (format {found!r}, expected {CHECKPOINT_FORMAT!r})"
        )
    missing = [k for k in CHECKPOINT_KEYS if k not in blob]
    if missing:
        raise ValueError(f"{path}: a damaged training checkpoint (no {', '.join(missing)})")
    return blob


def _lr_lambda(schedule: str, steps: int):
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    raise ValueError(f"train.lr_schedule must be 'constant' or 'cosine', got {schedule!r}")


def _convolutions_channels_last(module: torch.nn.Module) -> None:
    """Store every convolution's weight as NHWC (``train.channels_last``).

    oneDNN's convolutions, forward and backward, run about 1.2x faster on NHWC batches on the 2-core CPU
    this was measured on (``benchmarks/train_step.py``, 5 interleaved rounds). Only the 4-D weights move:
    the soft thresholds are per-channel vectors, which have no channels-last layout.
    """
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            m.to(memory_format=torch.channels_last)


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
        self.memory_format = torch.channels_last if t["channels_last"] else torch.contiguous_format
        if t["channels_last"]:
            _convolutions_channels_last(self.model)
            _convolutions_channels_last(self.loss)
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
                "format": CHECKPOINT_FORMAT,
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
        blob = read_checkpoint(path, self.device)  # tensors and plain data only: nothing in it runs
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
        try:
            self.model.load_state_dict(blob["model"])
            self.optimizer.load_state_dict(blob["optimizer"])
            self.scheduler.load_state_dict(blob["scheduler"])
            _set_rng_state(blob["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{path}: a damaged training checkpoint ({exc.__class__.__name__}: {exc})") from None
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
        ir = ir.to(self.device).contiguous(memory_format=self.memory_format)
        vi = vi.to(self.device).contiguous(memory_format=self.memory_format)
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
