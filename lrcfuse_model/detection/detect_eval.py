"""Detection mAP of one detector on the infrared, visible and fused inputs of a labelled dataset (``lrcfuse
detect-eval``), as in the M3FD experiments of the fusion literature (RefineFuse Table 4).

One detector (:func:`lrcfuse_model.detection.detectors.load_detector`) runs on every input of every labelled pair,
and each input's detections are scored against the same ground truth with pycocotools' ``COCOeval`` (the YOLO txt
labels and the detections are converted to COCO json in memory): AP@0.5 and AP@0.5:0.95 per class and their mean
over the classes (``all``).

* Datasets: folders with ``ir/``, ``vi/`` and ``labels/`` (YOLO txt ``cls cx cy w h``, normalised); the ground truth
  is ``labels/<labels>/`` (MSRS: ``fusion``, annotated with both modalities in view) or the txt files straight under
  ``labels/``. Class names come from ``labels/classes.txt`` (``0 person`` or ``person`` per line); without it the
  label ids are taken to be the detector's. Several folders are pooled into one evaluation.
* Inputs: ``ir`` and ``vi`` (the source images as read), ``average`` / ``max`` (pixel mean / max of the infrared
  image and the visible luminance, the visible chroma put back: both through the one preprocessing path,
  :func:`~lrcfuse_model.images.preprocess.prepare_pair` + :func:`~lrcfuse_model.images.preprocess.finish`, like
  ``ours``), ``ours`` (LRCFuse through :class:`~lrcfuse_model.inference.fuser.Fuser`) and ``NAME=DIR`` (another
  method's fused images); method names are parsed by :func:`lrcfuse_model.evaluation.evaluate.parse_methods`.
* Classes: the detector's classes are matched to the dataset's by name (case-insensitive); a dataset class the
  detector does not have is an error naming both lists. The detector only keeps the evaluated classes.
* Outputs in ``--out``: ``table.md``, ``table.csv``, ``records.json`` (``[{input, class, map50, map50_95}]``, class
  ``all`` for the overall row; also to ``--json PATH``), ``pr_curves.png`` (precision-recall at IoU 0.5 per class,
  one line per input), ``grid.jpg`` (rows = images, columns = inputs, detections drawn), ``failures.csv``.
  A failed image or (input, image) is recorded and skipped; an input is scored on the images it succeeded on.
* The second protocol of the literature, retraining the detector per input (8:1:1 split), needs ultralytics and a
  GPU: ``--export-yolo DIR`` writes one YOLO dataset per input with a ``data.yaml`` and prints the commands.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..config import ConfigError, split_list
from ..evaluation.evaluate import Method, parse_methods, spaced_indices, write_csv
from ..images.pairing import IMAGE_SUFFIXES, Pair, dataset_pairs
from ..images.preprocess import InputError, describe_error, finish, prepare_pair, read_image
from .detectors import Detections, Detector, draw_detections, label_font, load_detector

__all__ = [
    "SOURCE_INPUTS",
    "ClassAP",
    "DetectEvalResult",
    "GroundTruth",
    "Input",
    "LabelledDataset",
    "coco_ap",
    "cmd_detect_eval",
    "detect_eval",
    "export_yolo_datasets",
    "make_input",
    "map_classes",
    "parse_inputs",
    "read_classes",
    "read_yolo_labels",
    "resolve_labelled_datasets",
]

SOURCE_INPUTS: tuple[str, ...] = ("ir", "vi")
ALL_INPUTS = "(all)"  # the input column of a failure that concerns the pair itself
COCO_IOUS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval's recall thresholds


# ----------------------------------------------------------------------------------------------------------------
# datasets and labels
# ----------------------------------------------------------------------------------------------------------------


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
    names = [d.name for d in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"dataset folder name(s) given twice: {', '.join(dupes)}")
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


# ----------------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One column of the experiment: ``ir``, ``vi`` or a fusion :class:`~lrcfuse_model.evaluation.evaluate.Method`."""

    name: str
    method: Method | None = None

    @property
    def kind(self) -> str:
        return self.name if self.method is None else self.method.kind


def parse_inputs(specs: str | Iterable[str]) -> list[Input]:
    """``ir``, ``vi`` and fusion method specs (``average``, ``max``, ``ours``, ``NAME=DIR``; a list and/or commas)."""
    items = split_list(specs)
    if not items:
        raise ConfigError("no input given (--methods ir,vi,average,ours)")
    sources = [i for i in items if i in SOURCE_INPUTS]
    fused = parse_methods([i for i in items if i not in SOURCE_INPUTS]) if len(sources) < len(items) else []
    by_name = {m.name: m for m in fused}
    inputs = []
    for item in items:
        if item in SOURCE_INPUTS:
            inputs.append(Input(item))
        else:
            name = item.split("=", 1)[0].strip()
            inputs.append(Input(name, by_name[name]))
    names = [i.name for i in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"input(s) given twice: {', '.join(dupes)}")
    return inputs


def make_input(
    inp: Input | str,
    ir: np.ndarray,
    vi: np.ndarray,
    *,
    fuser: Callable[..., np.ndarray] | None = None,
    data_cfg: Mapping[str, Any] | None = None,
    names: tuple[str, str] = ("thermal image", "visible image"),
    folder_image: Path | None = None,
) -> np.ndarray:
    """The uint8 image the detector sees for one input of one pair (gray ``H x W`` or RGB ``H x W x 3``)."""
    kind = inp if isinstance(inp, str) else inp.kind
    if kind == "ir":
        # The thermal image as the network sees it: normalised, and warped / resized into the visible frame the
        # labels are in when the data config says so.
        return (np.clip(prepare_pair(ir, vi, data_cfg, names).ir, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if kind == "vi":
        if vi.dtype == np.uint8:
            return vi
        return (np.clip(vi.astype(np.float32) / 65535.0, 0, 1) * 255 + 0.5).astype(np.uint8)
    if kind == "ours":
        if fuser is None:
            raise ValueError("input 'ours' needs a fuser (LRCFuse weights)")
        return fuser(ir, vi, names=names)
    if kind in ("average", "max"):
        pair = prepare_pair(ir, vi, data_cfg, names)
        fused_y = (pair.ir + pair.vi_y) / 2.0 if kind == "average" else np.maximum(pair.ir, pair.vi_y)
        return finish(fused_y, pair)
    if kind == "folder":
        if folder_image is None:
            raise InputError("no fused image for this pair in the method's folder")
        return read_image(folder_image)
    raise ValueError(f"unknown input kind {kind!r}")


def _folder_image(folder: Path, name: str) -> Path | None:
    found = [p for p in folder.glob(f"{name}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
    if len(found) > 1:
        raise InputError(f"several fused images named {name}.* in {folder}: {', '.join(p.name for p in found)}")
    return found[0] if found else None


# ----------------------------------------------------------------------------------------------------------------
# COCO evaluation
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class GroundTruth:
    """The pooled ground truth in COCO form (category id = dataset class id + 1, image ids from 1)."""

    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    classes: dict[int, str] = field(default_factory=dict)  # dataset class id -> name

    def add_image(self, name: str, width: int, height: int, boxes: Sequence[Sequence[float]]) -> int:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for cls, x1, y1, x2, y2 in boxes:
            w, h = x2 - x1, y2 - y1
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(cls) + 1,
                    "bbox": [x1, y1, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        return image_id

    def coco_dict(self, class_ids: Iterable[int]) -> dict[str, Any]:
        return {
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": c + 1, "name": self.classes.get(c, str(c))} for c in sorted(class_ids)],
        }

    def counts(self) -> dict[int, int]:
        """Objects per dataset class."""
        out: dict[int, int] = {}
        for a in self.annotations:
            out[a["category_id"] - 1] = out.get(a["category_id"] - 1, 0) + 1
        return out


@dataclass
class ClassAP:
    """AP of one class (or ``all``): AP@0.5, AP@0.5:0.95 and the precision at each of the 101 recall points
    at IoU 0.5 (NaN where the curve does not reach that recall)."""

    name: str
    map50: float
    map50_95: float
    precision50: np.ndarray


def _detections_to_coco(detections: Mapping[int, Detections], to_dataset: Mapping[int, int]) -> list[dict[str, Any]]:
    rows = []
    for image_id, det in detections.items():
        for box, score, cls in zip(det.boxes, det.scores, det.class_ids):
            dataset_cls = to_dataset.get(int(cls))
            if dataset_cls is None:  # a class that is not evaluated
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            rows.append(
                {
                    "image_id": image_id,
                    "category_id": dataset_cls + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    return rows


def coco_ap(
    gt: GroundTruth,
    detections: Mapping[int, Detections],
    class_ids: Sequence[int],
    to_dataset: Mapping[int, int],
    image_ids: Sequence[int] | None = None,
) -> list[ClassAP]:
    """pycocotools' ``COCOeval`` (bbox, all areas, 100 detections per image) of ``detections`` (image id ->
    detections with *detector* class ids, mapped by ``to_dataset``) against ``gt`` on ``image_ids`` (default: all).

    Returns one :class:`ClassAP` per class of ``class_ids`` that has ground truth, then ``all`` (their mean, as
    COCO's mAP). With no detection at all every AP is 0.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise ImportError("detection mAP needs pycocotools: pip install lrcfuse[detect]") from exc
    counts = gt.counts()
    present = [c for c in sorted(class_ids) if counts.get(c, 0) > 0]
    ids = list(image_ids) if image_ids is not None else [im["id"] for im in gt.images]
    rows = _detections_to_coco({i: d for i, d in detections.items() if i in set(ids)}, to_dataset)
    rows = [r for r in rows if r["category_id"] - 1 in present]
    if not present:
        return []
    if not rows:
        nan = np.full(len(RECALL_POINTS), np.nan)
        return [ClassAP(gt.classes.get(c, str(c)), 0.0, 0.0, nan) for c in present] + [ClassAP("all", 0.0, 0.0, nan)]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = gt.coco_dict(present)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(rows)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = ids
        evaluator.params.catIds = [c + 1 for c in present]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, max detections]; -1 = no ground truth
    out = []
    per_class_50, per_class_all, curves = [], [], []
    for k, c in enumerate(present):
        p = precision[:, :, k, 0, -1]
        ap50 = float(np.mean(p[0][p[0] > -1])) if (p[0] > -1).any() else math.nan
        ap = float(np.mean(p[p > -1])) if (p > -1).any() else math.nan
        curve = np.where(p[0] > -1, p[0], np.nan)
        per_class_50.append(ap50)
        per_class_all.append(ap)
        curves.append(curve)
        out.append(ClassAP(gt.classes.get(c, str(c)), ap50, ap, curve))
    with np.errstate(all="ignore"):
        mean_curve = np.nanmean(np.stack(curves), axis=0) if curves else np.full(len(RECALL_POINTS), np.nan)
    out.append(ClassAP("all", float(np.nanmean(per_class_50)), float(np.nanmean(per_class_all)), mean_curve))
    return out


# ----------------------------------------------------------------------------------------------------------------
# tables and figures
# ----------------------------------------------------------------------------------------------------------------


def _pct(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{100 * v:.1f}"


def table_markdown(
    results: Mapping[str, Sequence[ClassAP]],
    counts: Mapping[str, int],
    n_images: Mapping[str, int],
    title: str = "",
) -> str:
    """Markdown: one row per input, mAP@0.5 and mAP@0.5:0.95 (in %) per class and overall; best per column bold."""
    classes = [a.name for a in next(iter(results.values()), [])]
    lines = [f"### {title}", ""] if title else []
    if not classes:
        return "\n".join(lines + ["(no class with ground truth: nothing to score)", ""])
    heads = ["input", "images"] + [f"{c} {m}" for c in classes for m in ("mAP50", "mAP50-95")]
    lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    best = {}
    for j, c in enumerate(classes):
        for m in ("map50", "map50_95"):
            vals = [getattr(r[j], m) for r in results.values() if len(r) > j and math.isfinite(getattr(r[j], m))]
            best[(c, m)] = max(vals) if vals else math.nan
    for name, aps in results.items():
        cells = [name, str(n_images.get(name, 0))]
        for a in aps:
            for m in ("map50", "map50_95"):
                v = getattr(a, m)
                cells.append(f"**{_pct(v)}**" if v == best[(a.name, m)] and len(results) > 1 else _pct(v))
        lines.append("| " + " | ".join(cells) + " |")
    objects = ", ".join(f"{c}: {counts.get(c, 0)}" for c in classes if c != "all")
    lines += [
        "",
        "AP in % from pycocotools COCOeval (bbox, all areas, 100 detections per image); "
        "`all` = mean over the classes. "
        f"Ground-truth objects: {objects}.",
        "",
    ]
    return "\n".join(lines)


def plot_pr_curves(results: Mapping[str, Sequence[ClassAP]], path: str | Path, title: str = "") -> Path:
    """PNG: one subplot per class (and ``all``), precision vs recall at IoU 0.5, one line per input."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = [a.name for a in next(iter(results.values()), [])]
    fig, axes = plt.subplots(1, max(1, len(classes)), figsize=(3.6 * max(1, len(classes)), 3.6), squeeze=False)
    for ax, (k, cls) in zip(axes[0], enumerate(classes)):
        for name, aps in results.items():
            ax.plot(RECALL_POINTS, aps[k].precision50, label=f"{name} ({_pct(aps[k].map50)})", linewidth=1.4)
        ax.set_title(f"{cls} (AP@0.5 in legend)", fontsize=10)
        ax.set_xlabel("recall")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    axes[0][0].set_ylabel("precision (IoU 0.5)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_detection_grid(
    rows: Sequence[Mapping[str, Any]], inputs: Sequence[str], path: str | Path, tile_width: int = 360
) -> Path | None:
    """JPEG grid: one row per entry (``name``, ``images``: ``{input: uint8 image}``, ``detections``:
    ``{input: Detections}``), one column per input, input names on top and pair names on the left. Boxes are drawn
    after the image is scaled to its tile, so labels stay readable. ``None`` without rows."""
    if not rows or not any(row["images"] for row in rows):
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = next(img for row in rows for img in row["images"].values())
    scale = tile_width / first.shape[1]
    tile_h = max(1, round(first.shape[0] * scale))
    font = label_font(15)
    head, side, gap = 24, 64, 4
    width = side + len(inputs) * (tile_width + gap)
    canvas = Image.new("RGB", (width, head + len(rows) * (tile_h + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(inputs):
        text_w = draw.textlength(name, font=font)
        draw.text((side + j * (tile_width + gap) + (tile_width - text_w) / 2, 4), name, fill=(0, 0, 0), font=font)
    for i, row in enumerate(rows):
        y = head + i * (tile_h + gap)
        draw.text((4, y + tile_h // 2 - 8), str(row["name"]), fill=(0, 0, 0), font=font)
        for j, name in enumerate(inputs):
            x = side + j * (tile_width + gap)
            img = row["images"].get(name)
            if img is None:
                draw.rectangle((x, y, x + tile_width - 1, y + tile_h - 1), fill=(235, 235, 235))
                draw.text((x + tile_width // 2 - 20, y + tile_h // 2 - 8), "failed", fill=(120, 120, 120), font=font)
                continue
            tile = np.asarray(Image.fromarray(img).resize((tile_width, tile_h), Image.LANCZOS))
            found = row["detections"][name]
            sx, sy = tile_width / img.shape[1], tile_h / img.shape[0]
            scaled = Detections(
                found.boxes * np.array([sx, sy, sx, sy], np.float32), found.scores, found.class_ids, found.names
            )
            canvas.paste(Image.fromarray(draw_detections(tile, scaled)), (x, y))
    canvas.save(path, quality=85)
    return path


# ----------------------------------------------------------------------------------------------------------------
# the whole experiment
# ----------------------------------------------------------------------------------------------------------------

TABLE_FIELDS = ["input", "class", "images", "objects", "map50", "map50_95"]
FAILURE_FIELDS = ["dataset", "input", "image", "error"]


@dataclass
class DetectEvalResult:
    out: Path
    results: dict[str, list[ClassAP]]  # input -> per-class APs, then "all"
    records: list[dict[str, Any]]  # {input, class, map50, map50_95}
    failures: list[dict[str, str]]
    markdown: str
    files: list[Path]
    wall_seconds: float


def _grid_names(pairs: Sequence[tuple[LabelledDataset, Pair]], count: int) -> set[str]:
    return {f"{pairs[i][0].name}/{pairs[i][1].name}" for i in spaced_indices(len(pairs), count)}


def _round(v: float) -> float | None:
    return round(float(v), 6) if v is not None and math.isfinite(v) else None


def _dataset_classes(datasets: Sequence[LabelledDataset], fallback: Sequence[str]) -> dict[int, str]:
    """The datasets' class names (``classes.txt``), else ``fallback`` by id (without it, the label ids are taken to be
    the detector's)."""
    for d in datasets:
        if d.classes is not None:
            return dict(d.classes)
    return dict(enumerate(fallback))


def _select_classes(all_classes: Mapping[int, str], wanted: Sequence[str | int]) -> dict[int, str]:
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


def detect_eval(
    datasets: str | Iterable[str],
    inputs: str | Iterable[str] = ("ir", "vi", "average", "ours"),
    detector: Detector | str | Path = "",
    out: str | Path = "runs/detect_eval",
    *,
    labels: str = "fusion",
    classes: Sequence[str | int] = (),
    confidence: float = 0.001,
    iou: float = 0.6,
    image_size: int = 640,
    weights: str | Path = "",
    device: str = "cpu",
    data_cfg: Mapping[str, Any] | None = None,
    fuser: Callable[..., np.ndarray] | None = None,
    limit: int = 0,
    grid_images: int = 4,
    grid_confidence: float = 0.25,
    json_path: str | Path = "",
    progress: bool = True,
) -> DetectEvalResult:
    """Run the experiment and write its outputs to ``out`` (see the module docstring). Datasets, inputs, the detector
    and the class mapping are checked before anything runs, so a wrong name fails at once."""
    started = time.perf_counter()
    dataset_list = resolve_labelled_datasets(datasets, labels)
    input_list = parse_inputs(inputs)
    if not isinstance(detector, Detector):
        if not str(detector):
            raise ConfigError("no detector given (--detector WEIGHTS)")
        detector = load_detector(detector, confidence, iou, None, device, image_size)
        if hasattr(detector, "multi_label"):
            detector.multi_label = True  # one box may count for several classes, as YOLOv5 measures mAP
    eval_classes = _select_classes(_dataset_classes(dataset_list, detector.names), classes)
    to_detector = map_classes(eval_classes, detector.names, detector.name)
    to_dataset = {d: c for c, d in to_detector.items()}
    if hasattr(detector, "class_filter"):  # detect only the evaluated classes
        detector.class_filter = sorted(to_dataset)
    if any(i.kind == "ours" for i in input_list) and fuser is None:
        from ..inference.fuser import Fuser
        from ..nn.checkpoint import load_model

        fuser = Fuser(load_model(weights or None, device), data_cfg, device)
    for i in input_list:
        if (
            i.kind == "folder"
            and i.method is not None
            and not i.method.templated
            and not Path(i.method.folder).is_dir()
        ):
            raise ConfigError(f"input {i.name}: folder {i.method.folder} does not exist")

    pairs: list[tuple[LabelledDataset, Pair]] = []
    failures: list[dict[str, str]] = []
    for d in dataset_list:
        found, problems = dataset_pairs(d.root)
        failures += [{"dataset": d.name, "input": ALL_INPUTS, "image": p.name, "error": str(p)} for p in problems]
        pairs += [(d, p) for p in (found[:limit] if limit > 0 else found)]
    if not pairs:
        raise ConfigError(f"no image pairs found in {', '.join(str(d.root) for d in dataset_list)}")

    from tqdm import tqdm

    gt = GroundTruth(classes=dict(eval_classes))
    detections: dict[str, dict[int, Detections]] = {i.name: {} for i in input_list}
    grid_wanted = _grid_names(pairs, grid_images)
    grid_rows: list[dict[str, Any]] = []

    def fail(dataset: str, inp: str, image: str, error: str) -> None:
        failures.append({"dataset": dataset, "input": inp, "image": image, "error": error})
        tqdm.write(f"FAILED {dataset} {inp} {image}: {error}", file=sys.stderr)

    for d, pair in tqdm(pairs, desc="detect-eval", unit="pair", disable=not progress, dynamic_ncols=True):
        key = f"{d.name}/{pair.name}"
        try:
            ir, vi = read_image(pair.ir), read_image(pair.vi)
            height, width = vi.shape[:2]
            boxes = read_yolo_labels(d.labels_dir / f"{pair.name}.txt", width, height)
        except Exception as exc:  # a pair without readable images or labels is skipped for every input
            fail(d.name, ALL_INPUTS, pair.name, describe_error(exc))
            continue
        image_id = gt.add_image(key, width, height, [b for b in boxes if b[0] in eval_classes])
        grid_row = {"name": pair.name, "images": {}, "detections": {}} if key in grid_wanted else None
        for inp in input_list:
            try:
                folder_image = None
                if inp.kind == "folder":
                    folder = inp.method.folder_for(d.name, d.root.parent)  # type: ignore[union-attr]
                    folder_image = _folder_image(folder, pair.name) if folder.is_dir() else None
                    if folder_image is None:
                        raise InputError(f"no fused image named {pair.name}.* in {folder}")
                image = make_input(
                    inp,
                    ir,
                    vi,
                    fuser=fuser,
                    data_cfg=data_cfg,
                    names=(str(pair.ir), str(pair.vi)),
                    folder_image=folder_image,
                )
                if image.shape[:2] != (height, width):
                    raise InputError(
                        f"{inp.name} image is {image.shape[1]}x{image.shape[0]}, the labels are for {width}x{height}"
                    )
                found = detector.detect(image)
            except Exception as exc:  # one failed (input, pair) is recorded; that input is scored without it
                fail(d.name, inp.name, pair.name, describe_error(exc))
                continue
            detections[inp.name][image_id] = found
            if grid_row is not None:
                shown = found.scores >= grid_confidence
                grid_row["images"][inp.name] = image
                grid_row["detections"][inp.name] = Detections(
                    found.boxes[shown], found.scores[shown], found.class_ids[shown], found.names
                )
        if grid_row is not None:
            grid_rows.append(grid_row)

    results: dict[str, list[ClassAP]] = {}
    n_images: dict[str, int] = {}
    for inp in input_list:
        ids = sorted(detections[inp.name])
        n_images[inp.name] = len(ids)
        if ids:
            results[inp.name] = coco_ap(gt, detections[inp.name], list(eval_classes), to_dataset, ids)

    counts_by_id = gt.counts()
    counts = {eval_classes[c]: n for c, n in counts_by_id.items()}
    counts["all"] = sum(counts_by_id.values())
    records = [
        {"input": name, "class": a.name, "map50": _round(a.map50), "map50_95": _round(a.map50_95)}
        for name, aps in results.items()
        for a in aps
    ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = f"Detection mAP: {detector.name} on {' + '.join(d.name for d in dataset_list)} ({len(gt.images)} pairs)"
    markdown = table_markdown(results, counts, n_images, title)
    files = [out / "table.md"]
    files[0].write_text(markdown, encoding="utf-8")
    table_rows = [
        {
            "input": name,
            "class": a.name,
            "images": n_images[name],
            "objects": counts.get(a.name, 0),
            "map50": _round(a.map50),
            "map50_95": _round(a.map50_95),
        }
        for name, aps in results.items()
        for a in aps
    ]
    files.append(write_csv(out / "table.csv", TABLE_FIELDS, table_rows))
    files.append(out / "records.json")
    files[-1].write_text(json.dumps(records, indent=2), encoding="utf-8")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(records, indent=2), encoding="utf-8")
        if Path(json_path).resolve() != files[-1].resolve():
            files.append(Path(json_path))
    if results:
        files.append(plot_pr_curves(results, out / "pr_curves.png", title))
    grid = make_detection_grid(grid_rows, [i.name for i in input_list], out / "grid.jpg")
    if grid:
        files.append(grid)
    files.append(write_csv(out / "failures.csv", FAILURE_FIELDS, failures))
    wall = time.perf_counter() - started
    info = {
        "detector": detector.name,
        "datasets": [{"name": d.name, "root": str(d.root), "labels": str(d.labels_dir)} for d in dataset_list],
        "inputs": [i.name for i in input_list],
        "classes": {str(c): n for c, n in eval_classes.items()},
        "confidence": confidence,
        "iou": iou,
        "image_size": image_size,
        "pairs": len(gt.images),
        "objects": counts,
        "n_failures": len(failures),
        "wall_seconds": round(wall, 2),
    }
    files.append(out / "run.json")
    files[-1].write_text(json.dumps(info, indent=2), encoding="utf-8")
    return DetectEvalResult(out, results, records, failures, markdown, files, wall)


# ----------------------------------------------------------------------------------------------------------------
# the retrain-per-input protocol
# ----------------------------------------------------------------------------------------------------------------


def export_yolo_datasets(
    datasets: str | Iterable[str],
    inputs: str | Iterable[str],
    out: str | Path,
    *,
    labels: str = "fusion",
    weights: str | Path = "",
    device: str = "cpu",
    data_cfg: Mapping[str, Any] | None = None,
    fuser: Callable[..., np.ndarray] | None = None,
    seed: int = 0,
    limit: int = 0,
    progress: bool = True,
) -> list[Path]:
    """Write ``out/<input>/{images,labels}/{train,val,test}/`` (the same seeded 8:1:1 split for every input) and
    ``out/<input>/data.yaml`` for ultralytics; return the ``data.yaml`` paths. Labels are copied unchanged; a pair
    that fails (no label file, unreadable image, failed fusion) is left out of every input and listed in
    ``out/failures.csv``.
    Train one detector per input with ``yolo detect train data=out/<input>/data.yaml model=yolov8n.pt`` and compare
    ``yolo detect val ... split=test``: the second protocol of the fusion literature (needs ultralytics and a GPU)."""
    import shutil

    import yaml
    from tqdm import tqdm

    dataset_list = resolve_labelled_datasets(datasets, labels)
    input_list = parse_inputs(inputs)
    if any(i.kind == "ours" for i in input_list) and fuser is None:
        from ..inference.fuser import Fuser
        from ..nn.checkpoint import load_model

        fuser = Fuser(load_model(weights or None, device), data_cfg, device)
    pairs: list[tuple[LabelledDataset, Pair]] = []
    for d in dataset_list:
        found, _ = dataset_pairs(d.root)
        pairs += [(d, p) for p in (found[:limit] if limit > 0 else found)]
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_train, n_val = int(round(0.8 * len(pairs))), int(round(0.1 * len(pairs)))
    split = {
        int(i): ("train" if k < n_train else "val" if k < n_train + n_val else "test") for k, i in enumerate(order)
    }
    names = _dataset_classes(dataset_list, [])
    if not names:  # no classes.txt: name the ids found in the labels
        ids = {
            int(float(line.split()[0]))
            for d, pair in pairs
            if (d.labels_dir / f"{pair.name}.txt").is_file()
            for line in (d.labels_dir / f"{pair.name}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
        names = {i: f"class{i}" for i in range(max(ids) + 1)} if ids else {0: "class0"}
    out = Path(out)
    written = []
    for inp in input_list:
        root = out / inp.name
        for sub in ("images", "labels"):
            for part in ("train", "val", "test"):
                (root / sub / part).mkdir(parents=True, exist_ok=True)
        yaml_path = root / "data.yaml"
        yaml_path.write_text(
            yaml.safe_dump(
                {
                    "path": str(root.resolve()),
                    "train": "images/train",
                    "val": "images/val",
                    "test": "images/test",
                    "names": {int(c): n for c, n in sorted(names.items())},
                },
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        written.append(yaml_path)
    failures: list[dict[str, str]] = []
    for k, (d, pair) in enumerate(tqdm(pairs, desc="export", unit="pair", disable=not progress)):
        label = d.labels_dir / f"{pair.name}.txt"
        try:  # every input of a pair, or none of them: the per-input datasets hold the same images
            read_yolo_labels(label, 1, 1)
            ir, vi = read_image(pair.ir), read_image(pair.vi)
            images = {}
            for inp in input_list:
                folder_image = None
                if inp.kind == "folder":
                    folder = inp.method.folder_for(d.name, d.root.parent)  # type: ignore[union-attr]
                    folder_image = _folder_image(folder, pair.name) if folder.is_dir() else None
                images[inp.name] = make_input(
                    inp,
                    ir,
                    vi,
                    fuser=fuser,
                    data_cfg=data_cfg,
                    names=(str(pair.ir), str(pair.vi)),
                    folder_image=folder_image,
                )
        except Exception as exc:  # recorded, and the other pairs are exported
            failures.append({"dataset": d.name, "input": ALL_INPUTS, "image": pair.name, "error": describe_error(exc)})
            tqdm.write(f"SKIPPED {d.name} {pair.name}: {failures[-1]['error']}", file=sys.stderr)
            continue
        stem = f"{d.name}_{pair.name}"
        for name, image in images.items():
            root = out / name
            Image.fromarray(image).save(root / "images" / split[k] / f"{stem}.png")
            shutil.copyfile(label, root / "labels" / split[k] / f"{stem}.txt")
    write_csv(out / "failures.csv", FAILURE_FIELDS, failures)
    return written


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------


def cmd_detect_eval(cfg: dict[str, Any]) -> int:
    """``lrcfuse detect-eval``: the experiment (or, with ``--export-yolo DIR``, the retrain datasets)."""
    e = cfg["detect_eval"]
    if e["threads"]:
        import torch

        torch.set_num_threads(e["threads"])
    if e["export_yolo"]:
        written = export_yolo_datasets(
            e["dataset"],
            e["methods"],
            e["export_yolo"],
            labels=e["labels"],
            weights=e["weights"],
            device=e["device"],
            data_cfg=cfg["data"],
            seed=e["seed"],
            limit=e["limit"],
        )
        print(
            f"wrote {len(written)} YOLO datasets (8:1:1 split, seed {e['seed']}); retrain and test one detector each "
            "(needs pip install lrcfuse[ultralytics] and a GPU):"
        )
        for path in written:
            print(
                f"  yolo detect train data={path} model=yolov8n.pt epochs=100 imgsz=640 "
                f"project={path.parent / 'train'} && yolo detect val data={path} split=test "
                f"model={path.parent / 'train' / 'train' / 'weights' / 'best.pt'}"
            )
        return 0
    result = detect_eval(
        e["dataset"],
        e["methods"],
        e["detector"],
        e["out"],
        labels=e["labels"],
        classes=e["classes"],
        confidence=e["confidence"],
        iou=e["iou"],
        image_size=e["image_size"],
        weights=e["weights"],
        device=e["device"],
        data_cfg=cfg["data"],
        limit=e["limit"],
        grid_images=e["grid_images"],
        grid_confidence=e["grid_confidence"],
        json_path=e["json"],
    )
    print()
    print(result.markdown)
    print(f"wrote {len(result.files)} files in {result.wall_seconds:.1f} s:")
    for path in result.files:
        print(f"  {path}")
    if result.failures:
        print(f"{len(result.failures)} images FAILED (listed in {result.out / 'failures.csv'}):", file=sys.stderr)
        for row in result.failures[:20]:
            print(f"  {row['dataset']} {row['input']} {row['image']}: {row['error']}", file=sys.stderr)
        return 1
    return 0
