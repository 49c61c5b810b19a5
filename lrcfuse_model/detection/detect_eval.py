"""Detection mAP of one detector on the infrared, visible and fused inputs of a labelled dataset (``lrcfuse
detect-eval``), as in the M3FD experiments of the fusion literature (RefineFuse Table 4).

One detector (:func:`lrcfuse_model.detection.detectors.load_detector`) runs on every input of every labelled pair,
and each input's detections are scored against the same ground truth with pycocotools' ``COCOeval``: AP@0.5 and
AP@0.5:0.95 per class and their mean over the classes (``all``). The steps, each a function:

1. :func:`prepare_experiment`: the datasets and their labels (:mod:`~lrcfuse_model.detection.labels`), the inputs
   (:mod:`~lrcfuse_model.detection.inputs`), the detector and the class mapping, checked before anything runs;
2. :func:`labelled_pairs`: the pairs of every dataset (several folders are pooled into one evaluation);
3. :func:`detect_all`: each input of each pair made and detected; a failed image or (input, image) is recorded and
   skipped, and an input is scored on the images it succeeded on;
4. :func:`score`: COCO AP per input (:mod:`~lrcfuse_model.detection.coco`);
5. :func:`~lrcfuse_model.detection.report.write_report`: tables, records, PR curves, the detection grid, failures;
   then ``run.json`` with the settings and counts.

The second protocol of the literature, retraining the detector per input (8:1:1 split), needs ultralytics and a
GPU: ``--export-yolo DIR`` writes one YOLO dataset per input (:mod:`~lrcfuse_model.detection.yolo_export`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError
from ..dependencies import install_hint
from ..evaluation.methods import fusers_for
from ..images.pairing import Pair, dataset_pairs
from ..images.preprocess import InputError, describe_error, read_image
from ..reporting import spaced_indices, write_json
from .coco import ClassAP, GroundTruth, coco_ap
from .detectors import Detections, Detector, load_detector
from .inputs import ALL_INPUTS, Input, find_fused_image, make_input, parse_inputs
from .labels import (
    LabelledDataset,
    dataset_classes,
    map_classes,
    read_yolo_labels,
    resolve_labelled_datasets,
    select_classes,
)
from .report import write_report
from .yolo_export import export_yolo_datasets

__all__ = [
    "DetectEvalResult",
    "Experiment",
    "cmd_detect_eval",
    "detect_all",
    "detect_eval",
    "labelled_pairs",
    "prepare_experiment",
    "score",
]


@dataclass
class DetectEvalResult:
    out: Path
    results: dict[str, list[ClassAP]]  # input -> per-class APs, then "all"
    records: list[dict[str, Any]]  # {input, class, map50, map50_95}
    failures: list[dict[str, str]]
    markdown: str
    files: list[Path]
    wall_seconds: float


@dataclass
class Experiment:
    """What runs: the datasets, the inputs, the detector and the evaluated classes (dataset id -> name), with the
    detector's class ids mapped to the dataset's (``to_dataset``), and the fuser for ``ours``."""

    datasets: list[LabelledDataset]
    inputs: list[Input]
    detector: Detector
    classes: dict[int, str]
    to_dataset: dict[int, int]
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None


def prepare_experiment(
    datasets: str | Iterable[str],
    inputs: str | Iterable[str],
    detector: Detector | str | Path,
    *,
    labels: str = "fusion",
    classes: Sequence[str | int] = (),
    confidence: float = 0.001,
    iou: float = 0.6,
    image_size: int = 640,
    weights: str | Path = "",
    device: str = "cpu",
    data_cfg: Mapping[str, Any] | None = None,
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None = None,
) -> Experiment:
    """Resolve and check everything before anything runs, so that a wrong name fails at once: the datasets, the
    inputs (and their folders), the detector (loaded from weights, multi-label as YOLOv5 measures mAP) and the
    classes; the fuser is loaded when ``ours`` is an input and none is given."""
    dataset_list = resolve_labelled_datasets(datasets, labels)
    input_list = parse_inputs(inputs)
    if not isinstance(detector, Detector):
        if not str(detector):
            raise ConfigError("no detector given (--detector WEIGHTS)")
        detector = load_detector(detector, confidence, iou, None, device, image_size)
        if hasattr(detector, "multi_label"):
            detector.multi_label = True  # one box may count for several classes, as YOLOv5 measures mAP
    eval_classes = select_classes(dataset_classes(dataset_list, detector.names), classes)
    to_detector = map_classes(eval_classes, detector.names, detector.name)
    to_dataset = {d: c for c, d in to_detector.items()}
    if hasattr(detector, "class_filter"):  # detect only the evaluated classes
        detector.class_filter = sorted(to_dataset)
    if any(i.kind == "ours" for i in input_list) and fuser is None:
        fuser = fusers_for((i.method for i in input_list), weights, device, data_cfg)
    for i in input_list:
        if (
            i.kind == "folder"
            and i.method is not None
            and not i.method.templated
            and not Path(i.method.folder).is_dir()
        ):
            raise ConfigError(f"input {i.name}: folder {i.method.folder} does not exist")
    return Experiment(dataset_list, input_list, detector, eval_classes, to_dataset, fuser)


def labelled_pairs(
    datasets: Sequence[LabelledDataset], limit: int = 0
) -> tuple[list[tuple[LabelledDataset, Pair]], list[dict[str, str]]]:
    """The pairs of every dataset (the first ``limit`` of each when ``limit > 0``), and a failure row for each
    unpaired file; no pair at all is an error."""
    pairs: list[tuple[LabelledDataset, Pair]] = []
    failures: list[dict[str, str]] = []
    for d in datasets:
        found, problems = dataset_pairs(d.root)
        failures += [{"dataset": d.name, "input": ALL_INPUTS, "image": p.name, "error": str(p)} for p in problems]
        pairs += [(d, p) for p in (found[:limit] if limit > 0 else found)]
    if not pairs:
        raise ConfigError(f"no image pairs found in {', '.join(str(d.root) for d in datasets)}")
    return pairs, failures


def _grid_names(pairs: Sequence[tuple[LabelledDataset, Pair]], count: int) -> set[str]:
    return {f"{pairs[i][0].name}/{pairs[i][1].name}" for i in spaced_indices(len(pairs), count)}


def _detect_input(
    exp: Experiment,
    inp: Input,
    d: LabelledDataset,
    pair: Pair,
    ir: np.ndarray,
    vi: np.ndarray,
    data_cfg: Mapping[str, Any] | None,
) -> tuple[np.ndarray, Detections]:
    """The image of one input of one pair (at the labels' size) and the detector's detections on it."""
    folder_image = None
    if inp.kind == "folder":
        folder = inp.method.folder_for(d.name, d.root.parent)  # type: ignore[union-attr]
        folder_image = find_fused_image(folder, pair.name) if folder.is_dir() else None
        if folder_image is None:
            raise InputError(f"no fused image named {pair.name}.* in {folder}")
    image = make_input(
        inp,
        ir,
        vi,
        fuser=exp.fuser,
        data_cfg=data_cfg,
        names=(str(pair.ir), str(pair.vi)),
        folder_image=folder_image,
    )
    height, width = vi.shape[:2]
    if image.shape[:2] != (height, width):
        raise InputError(f"{inp.name} image is {image.shape[1]}x{image.shape[0]}, the labels are for {width}x{height}")
    return image, exp.detector.detect(image)


def detect_all(
    exp: Experiment,
    pairs: Sequence[tuple[LabelledDataset, Pair]],
    failures: list[dict[str, str]],
    *,
    data_cfg: Mapping[str, Any] | None = None,
    grid_images: int = 4,
    grid_confidence: float = 0.25,
    progress: bool = True,
) -> tuple[GroundTruth, dict[str, dict[int, Detections]], list[dict[str, Any]]]:
    """Every input of every pair through the detector: the pooled ground truth, the detections per input (image id
    -> detections) and the grid rows (boxes of at least ``grid_confidence``). Failures are appended to
    ``failures``: a pair without readable images or labels is skipped for every input, a failed (input, pair) for
    that input."""
    from tqdm import tqdm

    gt = GroundTruth(classes=dict(exp.classes))
    detections: dict[str, dict[int, Detections]] = {i.name: {} for i in exp.inputs}
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
        image_id = gt.add_image(key, width, height, [b for b in boxes if b[0] in exp.classes])
        grid_row = {"name": pair.name, "images": {}, "detections": {}} if key in grid_wanted else None
        for inp in exp.inputs:
            try:
                image, found = _detect_input(exp, inp, d, pair, ir, vi, data_cfg)
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
    return gt, detections, grid_rows


def score(
    exp: Experiment, gt: GroundTruth, detections: Mapping[str, Mapping[int, Detections]]
) -> tuple[dict[str, list[ClassAP]], dict[str, int]]:
    """COCO AP of each input on the images it was detected on: ``(results, n_images)`` per input (an input without
    any image has no result)."""
    results: dict[str, list[ClassAP]] = {}
    n_images: dict[str, int] = {}
    for inp in exp.inputs:
        ids = sorted(detections[inp.name])
        n_images[inp.name] = len(ids)
        if ids:
            results[inp.name] = coco_ap(gt, detections[inp.name], list(exp.classes), exp.to_dataset, ids)
    return results, n_images


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
    fuser: Callable[..., np.ndarray] | Mapping[str, Callable[..., np.ndarray]] | None = None,
    limit: int = 0,
    grid_images: int = 4,
    grid_confidence: float = 0.25,
    json_path: str | Path = "",
    progress: bool = True,
) -> DetectEvalResult:
    """Run the experiment and write its outputs to ``out`` (see the module docstring). Datasets, inputs, the detector
    and the class mapping are checked before anything runs, so a wrong name fails at once."""
    started = time.perf_counter()
    exp = prepare_experiment(
        datasets, inputs, detector, labels=labels, classes=classes, confidence=confidence, iou=iou,
        image_size=image_size, weights=weights, device=device, data_cfg=data_cfg, fuser=fuser,
    )  # fmt: skip
    pairs, failures = labelled_pairs(exp.datasets, limit)
    gt, detections, grid_rows = detect_all(
        exp, pairs, failures, data_cfg=data_cfg, grid_images=grid_images, grid_confidence=grid_confidence,
        progress=progress,
    )  # fmt: skip
    results, n_images = score(exp, gt, detections)

    counts_by_id = gt.counts()
    counts = {exp.classes[c]: n for c, n in counts_by_id.items()}
    counts["all"] = sum(counts_by_id.values())
    out = Path(out)
    title = (
        f"Detection mAP: {exp.detector.name} on {' + '.join(d.name for d in exp.datasets)} ({len(gt.images)} pairs)"
    )
    input_names = [i.name for i in exp.inputs]
    records, markdown, files = write_report(
        out, results, counts, n_images, failures, grid_rows, input_names, title, json_path
    )
    wall = time.perf_counter() - started
    info = {
        "detector": exp.detector.name,
        "datasets": [{"name": d.name, "root": str(d.root), "labels": str(d.labels_dir)} for d in exp.datasets],
        "inputs": input_names,
        "classes": {str(c): n for c, n in exp.classes.items()},
        "confidence": confidence,
        "iou": iou,
        "image_size": image_size,
        "pairs": len(gt.images),
        "objects": counts,
        "n_failures": len(failures),
        "wall_seconds": round(wall, 2),
    }
    files.append(write_json(out / "run.json", info))
    return DetectEvalResult(out, results, records, failures, markdown, files, wall)


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
            f"(needs {install_hint('ultralytics')} and a GPU):"
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
