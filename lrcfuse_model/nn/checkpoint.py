"""LRCFuse weights files: writing them, and loading a model from them (or the shipped weights).

``save_weights`` writes the model config, fp32 tensors and metadata (plain tensors and containers:
``torch.load(weights_only=True)`` safe). ``load_model`` reads such a file or a training checkpoint
(``runs/train/last.pt``); ``load_pretrained`` is the shipped :data:`DEFAULT_WEIGHTS` (see MODEL_CARD.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .model import LRCFuse

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"  # lrcfuse_model/weights
DEFAULT_WEIGHTS = WEIGHTS_DIR / "lrcfuse_default.pt"


def save_weights(model: LRCFuse, path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a weights file: model config + fp32 tensors + metadata (plain, ``weights_only`` safe)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": "lrcfuse-weights-v1",
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    torch.save(blob, path)
    return path


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> LRCFuse:
    """An LRCFuse in eval mode from a weights file (``None``: the shipped weights).

    Accepts weights files written by :func:`save_weights` and training checkpoints
    (``runs/train/last.pt``). Anything else is an error naming the file and the expected keys.
    """
    path = Path(path) if path else DEFAULT_WEIGHTS
    if not path.is_file():
        hint = " (the package was installed without its weights?)" if path == DEFAULT_WEIGHTS else ""
        raise FileNotFoundError(f"LRCFuse weight file {path} does not exist{hint}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable LRCFuse weights file ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(blob, dict) or "model_config" not in blob or ("state_dict" not in blob and "model" not in blob):
        found = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: expected keys 'model_config' and 'state_dict' (or 'model'), found {found}")
    model = LRCFuse(blob["model_config"])
    state = blob.get("state_dict", blob.get("model"))
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors whose shapes differ from the config's (strict=False still raises)
        raise ValueError(f"{path}: weights do not match the model config they carry: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path}: weights do not match the model config they carry: missing {result.missing_keys[:8]}, "
            f"unexpected {result.unexpected_keys[:8]}"
        )
    return model.to(device).eval()


def load_pretrained(device: str | torch.device = "cpu") -> LRCFuse:
    """The shipped LRCFuse weights (see MODEL_CARD.md), in eval mode."""
    return load_model(None, device)
