"""The fusion node's parameters: one table that the node, config/fusion.yaml, the launch file and the README follow.

ROS-free on purpose: tests and docs read the table without starting ROS. Each entry has a default
(whose Python type is the parameter's type) and a description (the ParameterDescriptor text).
Dotted names (``detector.enabled``) are nested keys in a ROS parameter file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IDENTITY_HOMOGRAPHY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
RELIABILITIES = ("best_effort", "reliable")
MODEL_CHOICES = ("auto", "default", "rt")  # or a weights file
SIZE_MISMATCH_POLICIES = ("error", "resize_ir")


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: its default (which fixes its type) and what it does."""

    default: Any
    description: str
    # ROS type name for list parameters whose default is empty (an empty list has no element type).
    element_type: str = ""


PARAMETERS: dict[str, ParamSpec] = {
    # pairing
    "queue_size": ParamSpec(10, "messages kept per stream while waiting for a partner (approximate-time pairing)"),
    "slop": ParamSpec(0.05, "seconds: largest header-stamp difference of a thermal + RGB pair"),
    "min_interval": ParamSpec(
        0.01,
        "seconds: smallest header-stamp gap between two frames of one camera (message_filters' inter-message "
        "lower bound); a pair goes out as soon as no later frame could pair better instead of a frame later. "
        "0.01 suits cameras up to 60 Hz with stamps jittered by up to 6 ms; 1/rate - jitter of the faster camera "
        "releases the most pairs at once; 0 = no bound (wait for the next frame)",
    ),
    # model and backend
    "model": ParamSpec(
        "auto",
        "auto | default | rt | a weights file: auto = rt (LRCFuse-RT) when inference runs on the CPU, "
        "default (LRCFuse) on CUDA / TensorRT; the choice and why are logged",
    ),
    "backend": ParamSpec("auto", "inference backend: auto | torch | onnxruntime | tensorrt (auto logs its choice)"),
    "weights": ParamSpec("", "weights file (.pt, .onnx, TensorRT engine) run instead of `model`; empty = use `model`"),
    "device": ParamSpec("cpu", "cpu | cuda | cuda:N"),
    "threads": ParamSpec(0, "CPU inference threads; 0 = the backend's choice (all cores; ONNX Runtime: 1 for rt)"),
    "workers": ParamSpec(
        2, "pairs in flight: one converts and pre/post-processes while another is in the network (one at a time)"
    ),
    "cache_dir": ParamSpec("", "ONNX model / TensorRT engine cache; empty = $LRCFUSE_CACHE or ~/.cache/lrcfuse"),
    "fp16": ParamSpec(False, "TensorRT: build and run an FP16 engine"),
    # output
    "colour": ParamSpec(True, "publish bgr8 (fused Y + the visible image's chroma) for a colour camera; false = mono8"),
    # preprocessing (the `data` section of lrcfuse_model/cfg/default.yaml, applied by the one preprocessing path)
    "thermal_norm": ParamSpec("percentile", "16-bit thermal normalisation: percentile | fixed | minmax | none"),
    "thermal_percentiles": ParamSpec([1.0, 99.0], "thermal_norm percentile: clip to these low/high percentiles"),
    "thermal_range": ParamSpec([0.0, 65535.0], "thermal_norm fixed: raw values mapped to black / white"),
    "normalize_8bit": ParamSpec(False, "also apply thermal_norm to 8-bit thermal images (default: /255)"),
    "homography": ParamSpec(
        list(IDENTITY_HOMOGRAPHY),
        "3x3 row-major (9 floats) mapping thermal pixels to RGB pixels; identity = cameras already aligned",
    ),
    "homography_file": ParamSpec(
        "", "file (.yaml/.json/.txt) holding the 3x3 homography, instead of `homography` (leave that at identity)"
    ),
    "size_mismatch": ParamSpec("error", "thermal and RGB sizes differ (after the homography): error | resize_ir"),
    # QoS and monitoring
    "reliability": ParamSpec("best_effort", "input subscriptions: best_effort (sensor data) | reliable"),
    "qos_depth": ParamSpec(5, "history depth of the subscriptions and publishers"),
    "no_data_warning_s": ParamSpec(5.0, "warn when a subscribed stream has been silent this long (0 = never)"),
    "diagnostics_period_s": ParamSpec(1.0, "seconds between DiagnosticArray messages on `diagnostics`"),
    "summary_period_s": ParamSpec(5.0, "seconds between one-line rate/latency log summaries (0 = never)"),
    "log_throttle_s": ParamSpec(5.0, "seconds between repeated warnings of the same kind (bad frames, silent stream)"),
    # detection on the fused image
    "detector.enabled": ParamSpec(False, "run a detector on the fused image (needs detector.weights)"),
    "detector.weights": ParamSpec("", "detector weights: plain-tensor YOLOv5 .pt, or what ultralytics loads"),
    "detector.confidence": ParamSpec(0.25, "minimum detection score"),
    "detector.iou": ParamSpec(0.45, "NMS IoU threshold"),
    "detector.classes": ParamSpec([], "keep only these class names (empty = all classes)", element_type="string"),
    "detector.image_size": ParamSpec(640, "detector input size (letterboxed)"),
}

# Node parameter -> key of the `data` config section read by lrcfuse_model.images.preprocess.prepare_pair.
DATA_KEYS = {
    "thermal_norm": "thermal_norm",
    "thermal_percentiles": "thermal_percentiles",
    "thermal_range": "thermal_range",
    "normalize_8bit": "normalize_8bit",
    "homography": "homography",
    "homography_file": "homography_file",
    "size_mismatch": "size_mismatch",
}


class ParameterError(ValueError):
    """A node parameter with a value the node cannot use; the message names it and what is expected."""


def nested_defaults() -> dict[str, Any]:
    """The defaults as the nested mapping a ROS parameter file holds (``detector.enabled`` -> detector: enabled:)."""
    out: dict[str, Any] = {}
    for name, spec in PARAMETERS.items():
        node = out
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = list(spec.default) if isinstance(spec.default, list) else spec.default
    return out


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter mapping -> ``{"detector.enabled": ...}`` (the inverse of :func:`nested_defaults`)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def data_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data_cfg`` for :class:`lrcfuse_model.inference.fuser.Fuser` from node parameter values.

    An identity homography means "cameras already aligned" and is passed as ``[]`` so no warp runs.
    """
    cfg = {key: values[name] for name, key in DATA_KEYS.items() if name in values}
    if "homography" in cfg:
        h = [float(v) for v in cfg["homography"]]
        if h and len(h) != 9:
            raise ParameterError(f"homography: expected 9 numbers (a row-major 3x3 matrix), got {len(h)}")
        cfg["homography"] = [] if h == IDENTITY_HOMOGRAPHY else h
    for name in ("thermal_percentiles", "thermal_range"):
        if name in cfg:
            cfg[name] = [float(v) for v in cfg[name]]
            if len(cfg[name]) != 2:
                raise ParameterError(f"{name}: expected 2 numbers [low, high], got {cfg[name]}")
    if cfg.get("size_mismatch", "error") not in SIZE_MISMATCH_POLICIES:
        raise ParameterError(f"size_mismatch: expected one of {SIZE_MISMATCH_POLICIES}, got {cfg['size_mismatch']!r}")
    return cfg


def check_values(values: Mapping[str, Any]) -> None:
    """Reject values outside their allowed range, naming the parameter and what is expected."""
    if values.get("reliability", "best_effort") not in RELIABILITIES:
        raise ParameterError(f"reliability: expected one of {RELIABILITIES}, got {values['reliability']!r}")
    for name in ("queue_size", "qos_depth", "workers"):
        if name in values and int(values[name]) < 1:
            raise ParameterError(f"{name}: expected an integer >= 1, got {values[name]}")
    for name in ("slop", "min_interval", "no_data_warning_s", "summary_period_s", "log_throttle_s"):
        if name in values and float(values[name]) < 0:
            raise ParameterError(f"{name}: expected seconds >= 0, got {values[name]}")
    if "diagnostics_period_s" in values and float(values["diagnostics_period_s"]) <= 0:
        raise ParameterError(f"diagnostics_period_s: expected seconds > 0, got {values['diagnostics_period_s']}")
    model = str(values.get("model", "auto"))
    if model not in MODEL_CHOICES and not Path(model).is_file():
        raise ParameterError(
            f"model: expected one of {', '.join(MODEL_CHOICES)} or a weights file (.pt, .onnx, TensorRT engine), "
            f"got {model!r}" + (" (no such file)" if model else "")
        )
    if values.get("detector.enabled") and not values.get("detector.weights"):
        raise ParameterError(
            "detector.enabled is true but detector.weights is empty: give a detector weights file "
            "(e.g. a plain-tensor YOLOv5 .pt); the node never runs a detector with random weights"
        )
