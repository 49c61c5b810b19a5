"""The old flat module paths of ``lrcfuse_model`` (0.1.0), kept importable with a DeprecationWarning.

The package used to be one folder of flat modules; they now live in sub-packages by pipeline stage
(``nn``, ``images``, ``training``, ``inference``, ``evaluation``, ``detection``, ``streams``).
``import lrcfuse_model.fusion``, ``from lrcfuse_model.metrics import compute_all`` and
``from lrcfuse_model import metrics`` still work: :class:`MovedModuleFinder`, installed on
``sys.meta_path`` by ``lrcfuse_model/__init__.py``, answers for exactly the old names in
:data:`MOVED` and warns once per name, naming the new module(s).

A module that moved whole is aliased to its new module (the very same module object). A module
whose names were spread over several new modules (``fusion``: the ``Fuser`` stayed together,
``load_model`` went to ``nn.checkpoint``) becomes a small alias module that looks each name up in
its new homes, in order. Nothing here imports the new modules until an old name is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Sequence

PACKAGE = "lrcfuse_model"

# old module name (under lrcfuse_model) -> the module(s) that hold its names now, the main one first
MOVED: dict[str, tuple[str, ...]] = {
    "backends": ("lrcfuse_model.inference.backends", "lrcfuse_model.inference.runtimes"),
    "bag": ("lrcfuse_model.streams.bag",),
    "bench": ("lrcfuse_model.inference.bench",),
    "data": ("lrcfuse_model.training.data",),
    "detect_eval": (
        "lrcfuse_model.detection.detect_eval",
        "lrcfuse_model.detection.labels",
        "lrcfuse_model.detection.inputs",
        "lrcfuse_model.detection.coco",
        "lrcfuse_model.detection.report",
        "lrcfuse_model.detection.yolo_export",
    ),
    "detectors": (
        "lrcfuse_model.detection.detectors",
        "lrcfuse_model.detection.boxes",
        "lrcfuse_model.detection.drawing",
    ),
    "evaluate": (
        "lrcfuse_model.evaluation.evaluate",
        "lrcfuse_model.evaluation.methods",
        "lrcfuse_model.evaluation.scoring",
        "lrcfuse_model.evaluation.summary",
        "lrcfuse_model.evaluation.report",
        "lrcfuse_model.reporting",
    ),
    "export": ("lrcfuse_model.inference.export", "lrcfuse_model.inference.export_check"),
    "feature_nets": ("lrcfuse_model.nn.feature_nets",),
    "fusion": ("lrcfuse_model.inference.fuser", "lrcfuse_model.nn.checkpoint"),
    "image_msg": ("lrcfuse_model.streams.image_msg",),
    "loss": ("lrcfuse_model.nn.loss",),
    "metrics": ("lrcfuse_model.evaluation.metrics",),
    "model": ("lrcfuse_model.nn.model",),
    "pairing": ("lrcfuse_model.images.pairing",),
    "preprocess": ("lrcfuse_model.images.preprocess",),
    "stamp_sync": ("lrcfuse_model.streams.stamp_sync",),
    "train": ("lrcfuse_model.training.trainer", "lrcfuse_model.training.loss_log"),
    "yolov5": ("lrcfuse_model.nn.yolov5",),
}


class SpreadModule(types.ModuleType):
    """An old module whose names now live in several modules: attribute lookups try each, in order."""

    def __init__(self, name: str, homes: Sequence[types.ModuleType]) -> None:
        super().__init__(name, f"Moved: its names are now in {', '.join(m.__name__ for m in homes)}.")
        self.__homes = tuple(homes)
        self.__all__ = sorted(
            {n for m in homes for n in getattr(m, "__all__", [k for k in vars(m) if not k.startswith("_")])}
        )

    def __getattr__(self, name: str) -> object:
        for module in self.__homes:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(
            f"module {self.__name__!r} has no attribute {name!r} "
            f"(its names moved to {', '.join(m.__name__ for m in self.__homes)})"
        )

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(n for m in self.__homes for n in dir(m))})


_IMPORT_MACHINERY = (
    os.path.abspath(__file__),
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "__init__.py"),  # its __getattr__ imports old names
    os.path.abspath(importlib.__file__ or ""),
)


def _stacklevel() -> int:
    """``stacklevel`` for a warning raised in :func:`_warn`: the first frame outside the import machinery.

    :func:`warnings.warn` does not count importlib's bootstrap frames itself; the other frames are counted here.
    """
    level, frame = 1, sys._getframe(2)  # the caller of _warn; level 1 is _warn itself
    while frame is not None:
        name = frame.f_code.co_filename
        bootstrap = "importlib" in name and "_bootstrap" in name
        if not bootstrap and os.path.abspath(name) not in _IMPORT_MACHINERY:
            return level + 1
        frame, level = frame.f_back, level + (not bootstrap)
    return 1


def _warn(old: str, homes: Sequence[str]) -> None:
    new = homes[0] if len(homes) == 1 else f"{', '.join(homes[:-1])} and {homes[-1]}"
    warnings.warn(
        f"{old} moved: import it from {new} (the old path works, but will go in a later version)",
        DeprecationWarning,
        stacklevel=_stacklevel(),
    )


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads exactly the old module names of :data:`MOVED`; leaves every other import alone."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, old = fullname.rpartition(".")
        if package != PACKAGE or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self) -> None:
        self._new_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        homes = MOVED[spec.name.rpartition(".")[2]]
        _warn(spec.name, homes)
        modules = [importlib.import_module(name) for name in homes]
        if len(modules) > 1:
            return SpreadModule(spec.name, modules)
        self._new_specs[spec.name] = modules[0].__spec__  # the import system sets the alias's spec on it next
        return modules[0]

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run (the new modules ran when :meth:`create_module` imported them): only give a module
        aliased whole its own spec back, so that it still knows its new name."""
        alias = module.__spec__.name if module.__spec__ is not None else ""
        if alias in self._new_specs:
            module.__spec__ = self._new_specs.pop(alias)


def install() -> None:
    """Put one :class:`MovedModuleFinder` first on ``sys.meta_path`` (again after a reload: never two)."""
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != MovedModuleFinder.__name__]
    sys.meta_path.insert(0, MovedModuleFinder())
