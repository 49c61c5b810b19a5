"""YOLO models exported to ONNX, run on ONNX Runtime: ultralytics YOLOv8 / YOLO11 and YOLOv5 exports.

ultralytics-trained models (``yolo export model=best.pt format=onnx``) run here without torchvision or ultralytics,
which the light CPU torch cannot carry. Two output layouts are understood, told apart by the first output's shape:

* ``[1, 4 + nc, N]``: ultralytics' anchor-free heads (YOLOv8, YOLO11 and the other ``detect`` models of ultralytics
  8+): ``cx cy w h`` then the class scores of each of the N candidate boxes, no objectness;
* ``[1, N, 5 + nc]``: YOLOv5 (its ``export.py``, or :func:`export_yolov5_onnx` here): ``cx cy w h objectness`` then
  the class probabilities.

The number of classes ``nc`` comes from the class names: the model's own metadata (``names``, as both exporters
write it), else a meta JSON beside the file (``X.json`` with ``names``). With names, the layout is the one whose
channel count matches ``nc``; without, the smaller of the two dimensions is the channel one. A shape that fits
neither, or both (e.g. ``[1, 84, 85]`` with 80 classes), is an error naming the shape and the two layouts, never a
guess: segmentation and pose exports (extra mask / keypoint channels) and end-to-end exports with NMS inside
(``[1, 300, 6]``) are refused that way. The layout is read from one warm-up run when the detector loads, so a wrong
model fails at start, not on the first frame.

Pre- and post-processing are the other detectors': the letterbox of :mod:`~lrcfuse_model.detection.boxes` (to the
model's fixed input size, or for a model with dynamic height and width to ``image_size`` padded to the stride, as
YOLOv5 does), RGB / 255, and :func:`~lrcfuse_model.detection.postprocess.select_detections` (numpy NMS).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..dependencies import require
from .boxes import letterbox, scale_boxes
from .interface import Detections, Detector, check_image
from .postprocess import Selection, SelectionSettings, select_detections

__all__ = ["OnnxYoloDetector", "OutputLayout", "export_yolov5_onnx", "output_layout", "read_onnx_meta"]

STRIDES = (8, 16, 32)  # the detection levels of both YOLO families at their default sizes
LAYOUT_HELP = "[1, 4+nc, N] (ultralytics YOLOv8/YOLO11, no objectness) or [1, N, 5+nc] (YOLOv5)"


@dataclass(frozen=True)
class OutputLayout:
    """``kind``: ``"v8"`` (``[1, 4+nc, N]``) or ``"v5"`` (``[1, N, 5+nc]``); ``num_classes``: ``nc``."""

    kind: str
    num_classes: int

    @property
    def objectness(self) -> bool:
        return self.kind == "v5"


def output_layout(
    shape: Sequence[Any], num_classes: int | None = None, input_hw: tuple[int, int] | None = None, source: str = ""
) -> OutputLayout:
    """The layout of a YOLO output of ``shape`` (see the module docstring); :class:`ValueError` when unknown.

    ``num_classes``: from the class names, when known. ``input_hw``: the network input's size, to settle a shape
    that fits both layouts by the number of candidate boxes (``N`` for the anchor-free head, 3 per cell for YOLOv5).
    """
    where = f"{source}: " if source else ""
    dims = list(shape)
    if len(dims) != 3 or not all(isinstance(d, (int, np.integer)) for d in dims) or dims[0] != 1:
        raise ValueError(f"{where}YOLO output of shape {dims}: expected {LAYOUT_HELP}")
    a, b = int(dims[1]), int(dims[2])
    if num_classes is not None:
        found = [OutputLayout("v8", num_classes)] if a == 4 + num_classes else []
        found += [OutputLayout("v5", num_classes)] if b == 5 + num_classes else []
    else:
        found = [OutputLayout("v8", a - 4)] if 5 <= a <= b else []
        found += [OutputLayout("v5", b - 5)] if 6 <= b <= a else []
    if len(found) == 2 and input_hw is not None:
        cells = sum((input_hw[0] // s) * (input_hw[1] // s) for s in STRIDES)
        found = [f for f in found if (f.kind == "v8" and b == cells) or (f.kind == "v5" and a == 3 * cells)] or found
    if len(found) == 1:
        return found[0]
    classes = f"{num_classes} classes" if num_classes is not None else "no class names"
    reason = "fits both layouts" if found else "fits neither layout"
    raise ValueError(
        f"{where}YOLO output of shape {dims} with {classes} {reason}: expected {LAYOUT_HELP}. Detection exports only: "
        "segmentation / pose outputs and end-to-end exports with NMS inside (e.g. [1, 300, 6]) are not supported; "
        "export with nms=False, and give the class names (model metadata 'names' or a JSON beside the model)"
    )


def _parse_names(value: Any) -> list[str] | None:
    """Class names from a metadata value: a list, an ``{id: name}`` dict, or their Python / JSON text."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, Mapping):
        try:
            return [str(value[k]) for k in sorted(value, key=int)]
        except (TypeError, ValueError):
            return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return None


def read_onnx_meta(session: Any) -> dict[str, Any]:
    """``names`` (list or ``None``), ``stride`` (int or ``None``) and ``task`` from an ONNX Runtime session's model
    metadata, as ultralytics' and YOLOv5's exporters write it (each value the ``str()`` of a Python object)."""
    props = dict(session.get_modelmeta().custom_metadata_map)
    return {
        "names": _parse_names(props["names"]) if "names" in props else None,
        "stride": _parse_stride(props.get("stride")),
        "task": props.get("task", ""),
    }


class OnnxYoloDetector(SelectionSettings, Detector):
    """A YOLO detection model exported to ONNX, on ONNX Runtime (CPU, or CUDA for ``cuda[:N]``).

    ``meta``: ``names`` (and ``stride``) when the model's own metadata lacks them (a JSON beside the model, read by
    :func:`~lrcfuse_model.detection.detectors.load_detector`); the model's metadata wins. ``threads``: ONNX Runtime's
    intra-op threads (0: its default). The other arguments are those of every detector (see
    :class:`~lrcfuse_model.detection.postprocess.Selection`).
    """

    def __init__(
        self,
        weights: str | Path,
        confidence: float = 0.25,
        iou: float = 0.45,
        classes: Sequence[str | int] | None = None,
        device: str = "cpu",
        image_size: int = 640,
        meta: Mapping[str, Any] | None = None,
        threads: int = 0,
        multi_label: bool = False,
        max_detections: int = 300,
        max_candidates: int = 30000,
    ) -> None:
        self.weights = Path(weights)
        if not self.weights.is_file():
            raise FileNotFoundError(f"ONNX detector model {self.weights} does not exist")
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.name = f"onnx:{self.weights.name}"
        self.session = _session(self.weights, str(device), threads)
        self.device = str(device)
        own = read_onnx_meta(self.session)
        if own["task"] and own["task"] != "detect":
            raise ValueError(
                f"{self.weights}: an ultralytics '{own['task']}' model; only 'detect' models are supported"
            )
        given = dict(meta or {})
        names = own["names"] or _parse_names(given.get("names"))
        stride = own["stride"] or _parse_stride(given.get("stride"))
        self.stride = stride or max(STRIDES)
        model_input = self.session.get_inputs()[0]
        if len(model_input.shape) != 4:
            raise ValueError(f"{self.weights}: expected one image input [1, 3, H, W], got {model_input.shape}")
        self.input_name = model_input.name
        self.input_dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32
        h, w = model_input.shape[2:]
        # A fixed input size is letterboxed to exactly; dynamic H and W (names or None) to image_size and the stride.
        self.input_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.image_size = image_size
        warm = self._run(np.full((*(self.input_hw or (image_size, image_size)), 3), 114, np.uint8))
        self.layout = output_layout(warm[0].shape, len(names) if names else None, warm[1], str(self.weights))
        self.names = names or [f"class{i}" for i in range(self.layout.num_classes)]
        self.selection = Selection.for_detector(
            self.names, self.name, confidence, iou, classes, multi_label, max_detections, max_candidates
        )

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int], float, tuple[float, float]]:
        """Letterbox + run: the first output, the network input's ``(H, W)``, the letterbox ratio and padding."""
        padded, ratio, pad = letterbox(rgb, self.image_size, self.stride, shape=self.input_hw)
        x = (padded.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).astype(self.input_dtype)
        output = self.session.run(None, {self.input_name: x})[0]
        return np.asarray(output, dtype=np.float32), padded.shape[:2], ratio, pad

    def rows(self, output: np.ndarray) -> np.ndarray:
        """One output of this model's layout -> rows ``cx cy w h [objectness] scores...`` (one per candidate)."""
        channels = self.layout.num_classes + (5 if self.layout.objectness else 4)
        if output.ndim != 3 or output.shape[0] != 1 or output.shape[2 if self.layout.objectness else 1] != channels:
            raise ValueError(
                f"{self.weights}: output of shape {list(output.shape)} does not match its layout {self.layout}"
            )
        return output[0] if self.layout.objectness else output[0].T

    def detect(self, image: np.ndarray) -> Detections:
        rgb = check_image(image)
        output, _, ratio, pad = self._run(rgb)
        boxes, scores, class_ids = select_detections(self.rows(output), self.layout.objectness, self.selection)
        if not len(boxes):
            return Detections.empty(self.names)
        return Detections(scale_boxes(boxes, ratio, pad, rgb.shape[:2]), scores, class_ids, list(self.names))


def _parse_stride(value: Any) -> int | None:
    """The largest stride from a metadata value: a number, a list of them, or their text; ``None`` if none."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return int(max(value))
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def _session(path: Path, device: str, threads: int) -> Any:
    require("export", f"the ONNX detector {path}", modules=("onnxruntime",))
    import onnxruntime as ort

    from ..inference.runtimes import onnxruntime_providers

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(
            str(path), options, providers=onnxruntime_providers(ort, device, f"the ONNX detector {path.name}")
        )
    except Exception as exc:  # ORT's own errors (a file that is not ONNX, an unsupported opset) in one line
        if exc.__class__.__module__.startswith("onnxruntime"):
            raise ValueError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from exc
        raise


def export_yolov5_onnx(weights: str | Path, out: str | Path, opset: int = 18) -> Path:
    """Export a plain-tensor YOLOv5 (:mod:`lrcfuse_model.nn.yolov5`) to ONNX with dynamic height and width.

    The graph takes ``images`` ``[1, 3, H, W]`` (RGB / 255, H and W multiples of the largest stride) and returns
    ``output0`` ``[1, N, 5 + nc]``, with ``names`` and ``stride`` in the model metadata as YOLOv5's own exporter
    writes them, so :class:`OnnxYoloDetector` reads it like any YOLOv5 export. Needs onnx and onnxscript.
    """
    require("export", "exporting YOLOv5 to ONNX", modules=("onnx", "onnxscript"))
    import onnx
    import torch
    from torch.export import Dim

    from ..inference.export import _quiet_exporter
    from ..nn.yolov5 import load_yolov5

    model = load_yolov5(weights).eval()
    stride = int(model.model[-1].stride.max())

    class Decoded(torch.nn.Module):  # the decoded rows only (the raw maps are for training)
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.net(images)[0]

    h, w = Dim("h", min=1, max=256), Dim("w", min=1, max=256)
    with _quiet_exporter():
        program = torch.onnx.export(
            Decoded().eval(),
            (torch.zeros(1, 3, 2 * stride, 3 * stride),),
            input_names=["images"],
            output_names=["output0"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={"images": {2: stride * h, 3: stride * w}},
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    names = {i: n for i, n in enumerate(model.names)}
    onnx.helper.set_model_props(proto, {"stride": str(stride), "names": str(names)})
    onnx.checker.check_model(proto)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(out))
    return out
