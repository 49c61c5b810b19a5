"""lrcfuse_model: LRCFuse infrared + visible image fusion in PyTorch (no ROS imports).

>>> import lrcfuse_model
>>> model = lrcfuse_model.LRCFuse()              # default configuration, ~0.18 M parameters
>>> model = lrcfuse_model.load_pretrained()      # the shipped weights, eval mode
>>> fused = lrcfuse_model.fuse(ir_array, vi_array)  # numpy in, uint8 numpy out
>>> fuser = lrcfuse_model.Fuser(backend=lrcfuse_model.create_backend("auto"))  # ONNX Runtime / TensorRT

The package is laid out by pipeline stage: ``nn`` (network, loss, weights files), ``images``
(preprocessing, pairing), ``training``, ``inference`` (fuser, backends, export, bench),
``evaluation``, ``detection``, ``streams`` (ROS-free message tools and bags), ``reporting``; ``cli``,
``config`` and ``malloc_tuning`` sit at the top. The names above load on first use (PEP 562), so
``import lrcfuse_model.config`` does not import torch. The old flat module paths
(``lrcfuse_model.fusion``, ``lrcfuse_model.metrics``, ...) still import, with a DeprecationWarning
naming the new one (:mod:`lrcfuse_model._moved`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._moved import MOVED as _MOVED
from ._moved import install as _install_moved_modules

__version__ = "0.1.0"

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports them on first use
    from .inference.backends import BACKEND_NAMES, Backend, create_backend
    from .inference.fuser import Fuser, fuse
    from .nn.checkpoint import load_model, load_pretrained, save_weights
    from .nn.model import LRCFuse, LRCFuseConfig, count_parameters

# public name -> the module that defines it
_PUBLIC: dict[str, str] = {
    "BACKEND_NAMES": "lrcfuse_model.inference.backends",
    "Backend": "lrcfuse_model.inference.backends",
    "create_backend": "lrcfuse_model.inference.backends",
    "LRCFuse": "lrcfuse_model.nn.model",
    "LRCFuseConfig": "lrcfuse_model.nn.model",
    "Fuser": "lrcfuse_model.inference.fuser",
    "count_parameters": "lrcfuse_model.nn.model",
    "fuse": "lrcfuse_model.inference.fuser",
    "load_model": "lrcfuse_model.nn.checkpoint",
    "load_pretrained": "lrcfuse_model.nn.checkpoint",
    "save_weights": "lrcfuse_model.nn.checkpoint",
}

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "create_backend",
    "LRCFuse",
    "LRCFuseConfig",
    "Fuser",
    "count_parameters",
    "fuse",
    "load_model",
    "load_pretrained",
    "save_weights",
    "__version__",
]

_install_moved_modules()


def __getattr__(name: str) -> Any:
    home = _PUBLIC.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    if name in _MOVED:  # `lrcfuse_model.metrics` used without importing it first: the old path, with its warning
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
