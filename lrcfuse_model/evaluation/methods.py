"""What ``lrcfuse eval`` evaluates: fusion methods and paired datasets, from the names given on the command line.

Built in: ``ours`` (LRCFuse through :class:`~lrcfuse_model.inference.fuser.Fuser`: the shipped default model, or
the weights given), ``ours-rt`` (the shipped LRCFuse-RT), ``average`` and ``max``.
``NAME=DIR`` reads another method's fused images from a folder, named like the dataset's pairs (any image
extension). ``DIR`` may hold ``{dataset}`` (the dataset's name) and ``{data_root}``; a templated folder that does not
exist for a dataset skips the method there with a note. ``lrrnet`` is short for
``lrrnet={data_root}/reference_outputs/lrrnet_{dataset}``. Datasets are names under ``data_root`` or paths of
folders holding ``ir/`` and ``vi/``. ``lrcfuse detect-eval`` parses its fusion inputs with :func:`parse_methods` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, refuse_repeats, split_list

__all__ = [
    "BUILTIN_METHODS",
    "FOLDER_ALIASES",
    "Dataset",
    "Method",
    "fuser_of",
    "fusers_for",
    "parse_methods",
    "resolve_datasets",
]

BUILTIN_METHODS: tuple[str, ...] = ("ours", "ours-rt", "average", "max")
# Methods that run one of our shipped models (kind "ours"), and which: "" = the weights given, else the default.
OUR_MODELS: dict[str, str] = {"ours": "", "ours-rt": "rt"}
FOLDER_ALIASES: dict[str, str] = {"lrrnet": "{data_root}/reference_outputs/lrrnet_{dataset}"}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_PLACEHOLDERS = ("{dataset}", "{data_root}")


@dataclass(frozen=True)
class Method:
    """One column of the evaluation: ``kind`` is ``ours``, ``average``, ``max`` or ``folder`` (``folder`` set)."""

    name: str
    kind: str
    folder: str = ""  # a folder template for kind "folder": may hold {dataset} and {data_root}
    model: str = ""  # kind "ours": the shipped model's name ("" = the weights given, else the default model)

    @property
    def templated(self) -> bool:
        return any(p in self.folder for p in _PLACEHOLDERS)

    def folder_for(self, dataset: str, data_root: str | Path) -> Path:
        """The folder of this method's fused images for ``dataset`` (placeholders replaced)."""
        return Path(self.folder.replace("{data_root}", str(data_root)).replace("{dataset}", dataset))


def _valid_methods_text() -> str:
    aliases = ", ".join(f"{k} (= {k}={v})" for k, v in FOLDER_ALIASES.items())
    return (
        f"valid methods: {', '.join(BUILTIN_METHODS)}, {aliases}, or NAME=DIR (a folder of fused images named like "
        "the dataset's pairs; DIR may contain {dataset} and {data_root})"
    )


def parse_methods(specs: str | Iterable[str]) -> list[Method]:
    """Method specs (a list, and/or comma-separated strings) -> :class:`Method` list, in order.

    Raises :class:`~lrcfuse_model.config.ConfigError` for an unknown name (listing the valid ones), an empty list,
    a bad ``NAME`` or a name given twice.
    """
    items = split_list(specs)
    if not items:
        raise ConfigError(f"no method given; {_valid_methods_text()}")
    methods: list[Method] = []
    for item in items:
        if "=" in item:
            name, folder = (x.strip() for x in item.split("=", 1))
            if not _NAME_RE.match(name) or name in BUILTIN_METHODS:
                raise ConfigError(
                    f"method {item!r}: NAME must be letters, digits, '_', '.', '+' or '-' and not one of "
                    f"{', '.join(BUILTIN_METHODS)}"
                )
            if not folder:
                raise ConfigError(f"method {item!r}: empty folder after '='")
            methods.append(Method(name, "folder", folder))
        elif item in OUR_MODELS:
            methods.append(Method(item, "ours", model=OUR_MODELS[item]))
        elif item in BUILTIN_METHODS:
            methods.append(Method(item, item))
        elif item in FOLDER_ALIASES:
            methods.append(Method(item, "folder", FOLDER_ALIASES[item]))
        else:
            raise ConfigError(f"unknown method {item!r}; {_valid_methods_text()}")
    refuse_repeats((m.name for m in methods), "method name(s)")
    return methods


def fusers_for(
    methods: Iterable[Any], weights: str | Path = "", device: str = "cpu", data_cfg: Mapping[str, Any] | None = None
) -> dict[str, Callable[..., Any]]:
    """A :class:`~lrcfuse_model.inference.fuser.Fuser` for each method of kind ``ours`` (by method name): ``ours``
    runs ``weights`` (or the shipped default model), ``ours-rt`` the shipped LRCFuse-RT."""
    from ..inference.fuser import Fuser
    from ..nn.checkpoint import load_model

    ours = [m for m in methods if m is not None and m.kind == "ours"]
    return {m.name: Fuser(load_model(m.model or weights or None, device), data_cfg, device) for m in ours}


def fuser_of(
    name: str, fuser: Callable[..., Any] | Mapping[str, Callable[..., Any]] | None
) -> Callable[..., Any] | None:
    """The fuser of method ``name``: ``fuser`` is one callable for every ``ours`` method, or one per method name."""
    return fuser.get(name) if isinstance(fuser, Mapping) else fuser


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path


def _is_dataset_dir(p: Path) -> bool:
    return (p / "ir").is_dir() and (p / "vi").is_dir()


def resolve_datasets(names: str | Iterable[str], data_root: str | Path = "../shared/data") -> list[Dataset]:
    """Dataset names (under ``data_root``) or paths (folders with ``ir/`` and ``vi/``) -> :class:`Dataset` list.

    A path (anything with a ``/``) is used as is; a bare name is looked up under ``data_root`` first, then in the
    working directory. The dataset's name (used in the tables and for ``{dataset}``) is the folder's name.
    """
    items = split_list(names)
    if not items:
        raise ConfigError("no dataset given (--datasets NAME_OR_DIR ...)")
    root = Path(data_root)
    out: list[Dataset] = []
    for item in items:
        p = Path(item).expanduser()
        is_path = "/" in item or p.is_absolute()
        candidates = [p] if is_path else [root / item, p]
        found = next((c for c in candidates if _is_dataset_dir(c)), None)
        if found is None:
            available = sorted(d.name for d in root.iterdir() if _is_dataset_dir(d)) if root.is_dir() else []
            where = (
                f"; datasets under {root}: {', '.join(available)}"
                if available
                else f"; data root {root} {'has no dataset folders' if root.is_dir() else 'does not exist'}"
            )
            raise ConfigError(
                f"dataset {item!r}: no folder with ir/ and vi/ found at {' or '.join(map(str, candidates))}{where}"
            )
        name = found.resolve().name if found.name in ("", ".", "..") else found.name
        out.append(Dataset(name, found))
    refuse_repeats((d.name for d in out), "dataset name(s)")
    return out
