"""Labelled datasets of ``lrcfuse detect-eval``: folders with ``ir/``, ``vi/`` and YOLO txt ground truth.

The ground truth is ``labels/<labels>/`` (MSRS: ``fusion``, annotated with both modalities in view) or the txt files
straight under ``labels/`` (``cls cx cy w h``, normalised). Class names come from ``labels/classes.txt`` (``0 person``
or ``person`` per line); without it the label ids are taken to be the detector's. The detector's classes are matched
to the dataset's by name (case-insensitive); a dataset class the detector does not have is an error naming both lists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, refuse_repeats, split_list
from ..images.preprocess import InputError

__all__ = [
    "LabelledDataset",
    "dataset_classes",
    "map_classes",
    "read_classes",
    "read_yolo_labels",
    "resolve_labelled_datasets",
    "select_classes",
]


@dataclass(frozen=True)
class LabelledDataset:
    """A folder with ``ir/``, ``vi/`` and YOLO txt ground truth in ``labels_dir``; ``classes``: id -> name."""

    name: str
    root: Path
    labels_dir: Path
    classes: dict[int, str] | None


def read_classes(path: str | Path) -> dict[int, str]:
    """``classes.txt``: ``ID NAME`` or just ``NAME`` (the line number is the id) per line -> ``{id: name}``."""
    path = Path(path)
    classes: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) == 2 and parts[0].isdigit():
            classes[int(parts[0])] = parts[1].strip()
        else:
            classes[number] = line.strip()
    if not classes:
        raise ConfigError(f"{path}: no class names in it (expected 'ID NAME' or 'NAME' per line)")
    return classes


def _labels_dir(root: Path, subfolder: str) -> Path:
    labels = root / "labels"
    if not labels.is_dir():
        raise ConfigError(f"dataset {root}: no labels/ folder (expected YOLO txt ground truth in labels/)")
    if subfolder and (labels / subfolder).is_dir():
        return labels / subfolder
    if any(p.suffix == ".txt" and p.name != "classes.txt" for p in labels.iterdir()):
        return labels
    subfolders = sorted(p.name for p in labels.iterdir() if p.is_dir())
    raise ConfigError(
        f"dataset {root}: no labels/{subfolder}/ and no txt labels straight under labels/"
        + (f"; its label folders: {', '.join(subfolders)} (choose one with --labels)" if subfolders else "")
    )


def resolve_labelled_datasets(folders: str | Iterable[str], labels: str = "fusion") -> list[LabelledDataset]:
    """Dataset folders (a list and/or comma-separated) -> :class:`LabelledDataset` list; clear errors when one
    lacks ``ir/``, ``vi/`` or labels, or two disagree about class names."""
    items = split_list(folders)
    if not items:
        raise ConfigError("no dataset given (--dataset DIR ...: folders with ir/, vi/ and labels/)")
    out: list[LabelledDataset] = []
    for item in items:
        root = Path(item).expanduser()
        missing = [d for d in ("ir", "vi") if not (root / d).is_dir()]
        if missing:
            raise ConfigError(f"dataset {root}: no {' and no '.join(m + '/' for m in missing)} folder")
        labels_dir = _labels_dir(root, labels)
        classes_file = next(
            (p for p in (labels_dir / "classes.txt", root / "labels" / "classes.txt") if p.is_file()), None
        )
        classes = read_classes(classes_file) if classes_file else None
        name = root.resolve().name
        out.append(LabelledDataset(name, root, labels_dir, classes))
    refuse_repeats((d.name for d in out), "dataset folder name(s)")
    known = [d for d in out if d.classes is not None]
    for d in known[1:]:
        if d.classes != known[0].classes:
            raise ConfigError(
                f"datasets {known[0].root} and {d.root} name their classes differently: "
                f"{known[0].classes} vs {d.classes}"
            )
    return out


def read_yolo_labels(path: str | Path, width: int, height: int) -> list[tuple[int, float, float, float, float]]:
    """YOLO txt (``cls cx cy w h``, normalised) -> ``(cls, x1, y1, x2, y2)`` in pixels; a bad line is an
    :class:`InputError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no label file for this pair")
    boxes = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 5:
                raise ValueError(f"{len(parts)} values")
            cls = int(float(parts[0]))
            cx, cy, w, h = (float(v) for v in parts[1:])
            if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w < 0 or h < 0 or cls < 0:
                raise ValueError("negative or non-finite value")
        except ValueError as exc:
            raise InputError(
                f"{path} line {number}: expected 'class cx cy w h' (normalised), got {line!r} ({exc})"
            ) from exc
        x1, y1 = max(0.0, (cx - w / 2) * width), max(0.0, (cy - h / 2) * height)
        x2, y2 = min(float(width), (cx + w / 2) * width), min(float(height), (cy + h / 2) * height)
        boxes.append((cls, x1, y1, x2, y2))
    return boxes


def map_classes(
    dataset_classes: Mapping[int, str], detector_names: Sequence[str], detector: str = "the detector"
) -> dict[int, int]:
    """Dataset class id -> detector class id, by name (case-insensitive); a class the detector lacks is an error."""
    index = {n.strip().lower(): i for i, n in enumerate(detector_names)}
    missing = [n for n in dataset_classes.values() if n.strip().lower() not in index]
    if missing:
        raise ConfigError(
            f"dataset class(es) {', '.join(missing)} are not classes of {detector}; its classes: "
            f"{', '.join(detector_names)}"
        )
    return {c: index[n.strip().lower()] for c, n in dataset_classes.items()}


def dataset_classes(datasets: Sequence[LabelledDataset], fallback: Sequence[str]) -> dict[int, str]:
    """The datasets' class names (``classes.txt``), else ``fallback`` by id (without it, the label ids are taken to be
    the detector's)."""
    for d in datasets:
        if d.classes is not None:
            return dict(d.classes)
    return dict(enumerate(fallback))


def select_classes(all_classes: Mapping[int, str], wanted: Sequence[str | int]) -> dict[int, str]:
    """The classes to evaluate: ``wanted`` (names or ids) of ``all_classes``, or all of them; an unknown one is an
    error listing the dataset's classes."""
    if not wanted:
        return dict(all_classes)
    by_name = {n.lower(): c for c, n in all_classes.items()}
    out: dict[int, str] = {}
    for w in wanted:
        text = str(w).strip()
        if text.isdigit() and int(text) in all_classes:
            out[int(text)] = all_classes[int(text)]
        elif text.lower() in by_name:
            out[by_name[text.lower()]] = all_classes[by_name[text.lower()]]
        else:
            raise ConfigError(
                f"class {w!r} is not a dataset class; dataset classes: "
                + ", ".join(f"{c} {n}" for c, n in sorted(all_classes.items()))
            )
    return out
