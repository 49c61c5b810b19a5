"""LRCFuse weights files: writing them, and loading a model from them (or the shipped weights).

``save_weights`` writes the architecture, the model config, fp32 tensors and metadata (plain tensors
and containers: ``torch.load(weights_only=True)`` safe). ``load_model`` reads such a file or a training
checkpoint (``runs/train/last.pt``) and builds the architecture it names: ``lrcfuse`` (the default
network, :class:`~lrcfuse_model.nn.model.LRCFuse`; files without the key are this) or ``lrcfuse-rt``
(:class:`~lrcfuse_model.nn.rt_model.LRCFuseRT`). The shipped models have names (:data:`SHIPPED_MODELS`):
``default`` and ``rt``; :func:`resolve_weights` turns a name or a path into a file, once for every
command, the node and the Python API; ``load_pretrained(name)`` loads one (see MODEL_CARD.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .model import LRCFuse
from .rt_model import ARCHITECTURE as RT_ARCHITECTURE
from .rt_model import LRCFuseRT

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"  # lrcfuse_model/weights
DEFAULT_WEIGHTS = WEIGHTS_DIR / "lrcfuse_default.pt"
RT_WEIGHTS = WEIGHTS_DIR / "lrcfuse_rt.pt"
SHIPPED_MODELS: dict[str, Path] = {"default": DEFAULT_WEIGHTS, "rt": RT_WEIGHTS}
ARCHITECTURES: dict[str, type[nn.Module]] = {"lrcfuse": LRCFuse, RT_ARCHITECTURE: LRCFuseRT}


def resolve_weights(model: str | Path | None = None) -> Path:
    """A shipped model's name (``default``, ``rt``), or a weights file path, -> the weights file.

    ``None`` / ``""`` is ``default``. A name that is neither shipped nor an existing file is an error
    naming both the shipped names and the path that was tried.
    """
    if not model:
        return DEFAULT_WEIGHTS
    if str(model) in SHIPPED_MODELS:
        return SHIPPED_MODELS[str(model)]
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"model {str(model)!r} is neither a shipped model ({', '.join(SHIPPED_MODELS)}) "
            "nor an existing weights file"
        )
    return path


def build_model(architecture: str, cfg: Mapping[str, Any]) -> LRCFuse | LRCFuseRT:
    """A fresh (untrained) model of ``architecture`` with its sizes from the config: section ``model``
    for ``lrcfuse``, ``rt_model`` for ``lrcfuse-rt``."""
    sections = {"lrcfuse": "model", RT_ARCHITECTURE: "rt_model"}
    if architecture not in sections:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(sections)}")
    return ARCHITECTURES[architecture](cfg[sections[architecture]])


def model_name(model: nn.Module) -> str:
    """``'lrcfuse'`` or ``'lrcfuse-rt'``: the architecture a weights file records."""
    return getattr(model, "architecture", "lrcfuse")


def save_weights(model: LRCFuse | LRCFuseRT, path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a weights file: architecture + model config + fp32 tensors + metadata (``weights_only`` safe)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": "lrcfuse-weights-v1",
        "architecture": model_name(model),
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    torch.save(blob, path)
    return path


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> LRCFuse | LRCFuseRT:
    """A model in eval mode from a weights file or a shipped model's name (``None``: ``default``).

    Accepts weights files written by :func:`save_weights` and training checkpoints
    (``runs/train/last.pt``). Anything else is an error naming the file and the expected keys.
    """
    path = SHIPPED_MODELS.get(str(path), Path(path)) if path else DEFAULT_WEIGHTS
    if not path.is_file():
        hint = " (the package was installed without its weights?)" if path in SHIPPED_MODELS.values() else ""
        raise FileNotFoundError(f"LRCFuse weight file {path} does not exist{hint}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable LRCFuse weights file ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(blob, dict) or "model_config" not in blob or ("state_dict" not in blob and "model" not in blob):
        found = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: expected keys 'model_config' and 'state_dict' (or 'model'), found {found}")
    architecture = blob.get("architecture", "lrcfuse")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown architecture {architecture!r}; this version knows {sorted(ARCHITECTURES)}")
    model = ARCHITECTURES[architecture](blob["model_config"])
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


def load_pretrained(name: str = "default", device: str | torch.device = "cpu") -> LRCFuse | LRCFuseRT:
    """A shipped model in eval mode: ``'default'`` (LRCFuse) or ``'rt'`` (LRCFuse-RT); see MODEL_CARD.md."""
    if name not in SHIPPED_MODELS:
        if name in ("cpu", "cuda") or str(name).startswith("cuda:"):  # the 0.1 signature was load_pretrained(device)
            return load_model(None, name)
        raise ValueError(f"unknown shipped model {name!r}; choose one of {', '.join(SHIPPED_MODELS)}")
    return load_model(SHIPPED_MODELS[name], device)
