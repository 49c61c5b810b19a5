"""Object detectors behind one interface: ``load_detector(weights).detect(image) -> Detections``.

Two kinds of weight files are understood, told apart by their content (never by trusting a pickle):

* **Plain-tensor YOLOv5** (``{'state_dict': ..., 'meta': {'yaml': layer_list, 'names': [...], 'stride': [...]}}``,
  loadable with ``torch.load(weights_only=True)``), optionally completed by a meta JSON beside the weights
  (``X_meta.json`` for ``X_state_dict.pt``, or ``X.json``): :class:`YOLOv5Detector` builds the network from its layer
  list (:mod:`lrcfuse_model.nn.yolov5`), letterboxes the image like YOLOv5 (keep the aspect ratio, pad with gray 114
  to a multiple of the largest stride), decodes the anchors and runs our batched NMS. Needs only the light CPU torch.
* **YOLO exported to ONNX** (``.onnx``: ultralytics YOLOv8 / YOLO11 ``[1, 4+nc, N]`` or YOLOv5 ``[1, N, 5+nc]``,
  told apart by the output's shape): :class:`~lrcfuse_model.detection.onnx_yolo.OnnxYoloDetector` on ONNX Runtime,
  the same letterbox and numpy NMS; no torchvision, no ultralytics. Needs onnxruntime.
* **Anything else the ultralytics API loads** (``.pt`` files of ultralytics 8+, ``.engine``, ``.torchscript`` ...):
  :class:`UltralyticsDetector` calls ``ultralytics.YOLO`` exactly as its users do. ``ultralytics`` is an optional
  extra (``pip install "lrcfuse_ros[ultralytics]"``; it needs PyPI's full torch + torchvision, several GB).

An **original ultralytics/yolov5 checkpoint** (``yolov5n.pt`` of the yolov5 repository: a pickle of the repository's
own ``models.yolo.Model`` class) is recognised by reading the class names its pickle refers to *without* unpickling
it; loading it would run the yolov5 repository's code, and ultralytics 8+ refuses it. The error says how to convert
it once, with the yolov5 code you trust on ``sys.path``::

    import torch                                   # run inside a clone of ultralytics/yolov5
    model = torch.load("yolov5n.pt", map_location="cpu", weights_only=False)["model"].float()
    names = model.names if isinstance(model.names, list) else [model.names[i] for i in sorted(model.names)]
    torch.save({"state_dict": model.state_dict(),
                "meta": {"yaml": model.yaml, "names": names, "stride": model.stride.tolist()}},
               "yolov5n_state_dict.pt")

A missing file, a format that is none of these, or a class name the detector does not know is a clear error.
:mod:`~lrcfuse_model.detection.interface` holds the interface every detector implements,
:mod:`~lrcfuse_model.detection.boxes` the letterbox and NMS geometry, :mod:`~lrcfuse_model.detection.postprocess`
the row decoding shared by the YOLO detectors, :mod:`~lrcfuse_model.detection.drawing` draws boxes with class names
and scores on a copy of an image.
"""

from __future__ import annotations

import json
import pickletools
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..dependencies import install_hint
from .boxes import letterbox, scale_boxes
from .interface import Detections, Detector, check_image, class_filter_ids
from .onnx_yolo import OnnxYoloDetector
from .postprocess import Selection, SelectionSettings, select_detections

__all__ = [
    "Detections",
    "Detector",
    "OnnxYoloDetector",
    "UltralyticsDetector",
    "YOLOv5Detector",
    "detector_format",
    "load_detector",
]

ONNX_SUFFIXES = (".onnx",)
ULTRALYTICS_SUFFIXES = (".engine", ".torchscript", ".tflite", ".mlpackage", ".xml", ".pb")
ULTRALYTICS_HINT = f"{install_hint('ultralytics')}  (or: pip install ultralytics)"


# ----------------------------------------------------------------------------------------------------------------
# detectors
# ----------------------------------------------------------------------------------------------------------------


class YOLOv5Detector(SelectionSettings, Detector):
    """A YOLOv5 (v6.x, anchor-based) network built from a plain-tensor checkpoint.

    ``multi_label``: each box may be kept once per class whose score passes ``confidence`` (what YOLOv5 does when it
    measures mAP); the default keeps only its best class (what its ``detect.py`` does). ``max_detections`` caps the
    boxes per image after NMS, ``max_candidates`` the boxes that enter NMS (best scores first).
    """

    def __init__(
        self,
        weights: str | Path,
        confidence: float = 0.25,
        iou: float = 0.45,
        classes: Sequence[str | int] | None = None,
        device: str = "cpu",
        image_size: int = 640,
        meta: dict[str, Any] | None = None,
        multi_label: bool = False,
        max_detections: int = 300,
        max_candidates: int = 30000,
    ) -> None:
        from ..nn.yolov5 import load_yolov5

        self.weights = Path(weights)
        self.name = f"yolov5:{self.weights.name}"
        self.device = torch.device(device)
        self.model = load_yolov5(self.weights, meta=meta).to(self.device).eval()
        detect = self.model.model[-1]
        self.names = list(self.model.names) or [f"class{i}" for i in range(detect.nc)]
        if len(self.names) != detect.nc:
            raise ValueError(
                f"{self.weights}: the meta lists {len(self.names)} class names but the network has {detect.nc} classes"
            )
        self.stride = int(detect.stride.max())
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = image_size
        self.selection = Selection.for_detector(
            self.names, self.name, confidence, iou, classes, multi_label, max_detections, max_candidates
        )

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> Detections:
        rgb = check_image(image)
        padded, ratio, pad = letterbox(rgb, self.image_size, self.stride)
        x = torch.from_numpy(padded).to(self.device).permute(2, 0, 1)[None].float().div_(255.0)
        decoded, _ = self.model(x)
        rows = decoded[0].float()
        # Objectness below the threshold can never pass (scores are objectness x class probability): drop those
        # rows on the device, so that only the few candidates travel to the CPU for the numpy post-processing.
        rows = rows[rows[:, 4] > self.selection.confidence].cpu().numpy()
        boxes, scores, class_ids = select_detections(rows, True, self.selection)
        if not len(boxes):
            return Detections.empty(self.names)
        return Detections(scale_boxes(boxes, ratio, pad, rgb.shape[:2]), scores, class_ids, list(self.names))


class UltralyticsDetector(Detector):
    """Any model ``ultralytics.YOLO`` loads (``.pt`` of ultralytics 8+, ``.onnx``, ``.engine`` ...), run as its
    users run it: ``model.predict(image, conf=, iou=, classes=, imgsz=, device=)``."""

    def __init__(
        self,
        weights: str | Path,
        confidence: float = 0.25,
        iou: float = 0.45,
        classes: Sequence[str | int] | None = None,
        device: str = "cpu",
        image_size: int = 640,
    ) -> None:
        try:
            from ultralytics import YOLO
        except ImportError as exc:
            raise ImportError(
                f"{weights} needs the ultralytics package, which is not installed: {ULTRALYTICS_HINT}. "
                "(It needs PyPI's full torch + torchvision, several GB.) Plain-tensor YOLOv5 files "
                "({'state_dict', 'meta'}) load without it."
            ) from exc
        self.weights = Path(weights)
        self.name = f"ultralytics:{self.weights.name}"
        self.model = YOLO(str(self.weights))
        model_names = self.model.names
        if isinstance(model_names, dict):
            self.names = [str(model_names[i]) for i in sorted(model_names)]
        else:
            self.names = [str(n) for n in model_names]
        self.confidence, self.iou = float(confidence), float(iou)
        self.device, self.image_size = device, image_size
        self.class_filter = class_filter_ids(classes, self.names, self.name)

    def detect(self, image: np.ndarray) -> Detections:
        rgb = check_image(image)
        # ultralytics reads numpy arrays as OpenCV BGR images.
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        result = self.model.predict(
            bgr,
            conf=self.confidence,
            iou=self.iou,
            classes=self.class_filter,
            imgsz=self.image_size,
            device=self.device,
            verbose=False,
        )[0]
        found = result.boxes
        if found is None or len(found) == 0:
            return Detections.empty(self.names)
        return Detections(
            found.xyxy.cpu().numpy().astype(np.float32),
            found.conf.cpu().numpy().astype(np.float32),
            found.cls.cpu().numpy().astype(np.int64),
            list(self.names),
        )


# ----------------------------------------------------------------------------------------------------------------
# telling formats apart
# ----------------------------------------------------------------------------------------------------------------


def _pickle_globals(path: Path) -> set[str]:
    """Module names a torch zip checkpoint's pickle refers to, read with ``pickletools`` (nothing is executed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not pickles:
                return set()
            data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError):
        return set()
    modules: set[str] = set()
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST") and isinstance(arg, str):
                modules.add(arg.split(" ")[0])
            elif isinstance(arg, str):
                strings.append(arg)
            if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                modules.add(strings[-2])
    except Exception:  # a damaged pickle tells us what it could before the damage
        pass
    return modules


def _meta_beside(weights: Path) -> dict[str, Any] | None:
    """The meta JSON beside plain-tensor weights (``X_meta.json`` for ``X_state_dict.pt``, or ``X.json``)."""
    stem = weights.stem
    candidates = [weights.with_suffix(".json")]
    if stem.endswith("_state_dict"):
        candidates.insert(0, weights.with_name(stem[: -len("_state_dict")] + "_meta.json"))
    for candidate in candidates:
        if candidate.is_file():
            try:
                meta = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{candidate}: not a readable meta JSON for {weights} ({exc})") from exc
            if not isinstance(meta, dict):
                raise ValueError(
                    f"{candidate}: expected a JSON object (names, stride, yaml), got {type(meta).__name__}"
                )
            return meta
    return None


def detector_format(weights: str | Path) -> str:
    """``yolov5-tensors``, ``onnx``, ``ultralytics`` or ``yolov5-pickle`` (an original yolov5 checkpoint) for a
    weight file.

    Raises :class:`FileNotFoundError` for a missing file and :class:`ValueError` for a file of no known format.
    """
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(
            f"detector weights {path} do not exist (expected a plain-tensor YOLOv5 .pt, a YOLO exported to .onnx, "
            f"or a model ultralytics loads: {', '.join(('.pt',) + ULTRALYTICS_SUFFIXES)})"
        )
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES and path.is_file():
        return "onnx"
    if suffix in ULTRALYTICS_SUFFIXES or path.is_dir():  # exported models (and OpenVINO / saved_model folders)
        return "ultralytics"
    if suffix not in (".pt", ".pth"):
        raise ValueError(
            f"detector weights {path}: unknown format {suffix or '(no suffix)'!r}; expected a plain-tensor YOLOv5 "
            f".pt, a YOLO exported to .onnx, or a model ultralytics loads "
            f"({', '.join(('.pt',) + ULTRALYTICS_SUFFIXES)})"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a pickle of classes: look at which ones without running it
        blob = None
    if isinstance(blob, dict) and "state_dict" in blob:
        return "yolov5-tensors"
    modules = _pickle_globals(path)
    if any(m == "ultralytics" or m.startswith("ultralytics.") for m in modules):
        return "ultralytics"
    if any(m == "models.yolo" or m.startswith("models.") for m in modules):
        return "yolov5-pickle"
    found = (
        f"a dict with keys {sorted(blob)[:10]}"
        if isinstance(blob, dict)
        else (f"a pickle of {', '.join(sorted(modules)[:6])}" if modules else "not a readable torch checkpoint")
    )
    raise ValueError(
        f"detector weights {path}: unknown format ({found}); expected a plain-tensor YOLOv5 file "
        "{'state_dict': ..., 'meta': {'yaml', 'names', 'stride'}} or an ultralytics 8+ checkpoint"
    )


def load_detector(
    weights: str | Path,
    confidence: float = 0.25,
    iou: float = 0.45,
    classes: Sequence[str | int] | None = None,
    device: str = "cpu",
    image_size: int = 640,
) -> Detector:
    """The detector for a weight file (see the module docstring for the formats).

    ``confidence``: lowest score kept; ``iou``: NMS threshold; ``classes``: keep only these (names or ids);
    ``image_size``: the long side the image is letterboxed to. Errors: :class:`FileNotFoundError` (missing file),
    :class:`ValueError` (unknown format or ONNX output layout, original yolov5 pickle, unknown class),
    :class:`ImportError` (ultralytics format without ultralytics, ONNX without onnxruntime installed).
    """
    path = Path(weights)
    kind = detector_format(path)
    if kind == "yolov5-pickle":
        raise ValueError(
            f"{path} is an original ultralytics/yolov5 checkpoint (a pickle of the yolov5 repository's classes). "
            "Loading it would run that repository's code, and ultralytics 8+ does not load it. Convert it once to "
            "plain tensors with the yolov5 code on sys.path: see the docstring of lrcfuse_model.detection.detectors "
            "(torch.save({'state_dict': model.state_dict(), 'meta': {'yaml': model.yaml, 'names': names, "
            "'stride': model.stride.tolist()}}, 'yolov5_state_dict.pt'))."
        )
    if kind == "ultralytics":
        return UltralyticsDetector(path, confidence, iou, classes, device, image_size)
    if kind == "onnx":
        return OnnxYoloDetector(path, confidence, iou, classes, device, image_size, meta=_meta_beside(path))
    return YOLOv5Detector(path, confidence, iou, classes, device, image_size, meta=_meta_beside(path))
