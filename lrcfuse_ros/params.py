"""The fusion node's parameters: one table that the node, config/fusion.yaml, the launch file and the README follow.

ROS-free on purpose: tests and docs read the table without starting ROS. Each entry has a default
(whose Python type is the parameter's type) and a description (the ParameterDescriptor text).
Dotted names (``detector.enabled``) are nested keys in a ROS parameter file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrcfuse_model.config import ConfigError
from lrcfuse_model.images.preprocess import SIZE_MISMATCH_POLICIES, THERMAL_NORMS, InputError, data_settings

IDENTITY_HOMOGRAPHY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
RELIABILITIES = ("auto", "best_effort", "reliable")
TRANSPORTS = ("raw", "compressed")
COMPRESSED_CODECS = ("", "jpeg", "png")
MODEL_CHOICES = ("auto", "default", "rt")  # or a weights file
BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")  # lrcfuse_model.inference.backends.BACKEND_NAMES
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")


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
    "backend": ParamSpec(
        "auto", "inference backend: auto | torch | onnxruntime | openvino | tensorrt (auto logs its choice)"
    ),
    "weights": ParamSpec("", "weights file (.pt, .onnx, TensorRT engine) run instead of `model`; empty = use `model`"),
    "device": ParamSpec("cpu", "cpu | cuda | cuda:N"),
    "threads": ParamSpec(0, "CPU inference threads; 0 = the backend's choice (all cores; ONNX Runtime: 1 for rt)"),
    "workers": ParamSpec(
        2, "pairs in flight: one converts and pre/post-processes while another is in the network (one at a time)"
    ),
    "cache_dir": ParamSpec("", "ONNX model / TensorRT engine cache; empty = $LRCFUSE_CACHE or ~/.cache/lrcfuse"),
    "fp16": ParamSpec(False, "TensorRT: build and run an FP16 engine"),
    "tile": ParamSpec(
        "auto",
        "auto | off | N: auto cuts a frame whose network working memory would exceed max_memory into overlapping "
        "tiles (same result as the whole frame); N = tiles of N x N pixels; off = whole frames",
    ),
    "max_memory": ParamSpec("2GB", "memory budget of the network for one frame or tile (512MB, 2GB ...; 0 = none)"),
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
    "reliability": ParamSpec(
        "auto",
        "input subscriptions: auto | best_effort | reliable; auto = match the discovered publishers as ros2 bag "
        "record does (reliable when every publisher is reliable: lost fragments of large images are repaired)",
    ),
    "thermal_transport": ParamSpec(
        "raw", "raw | compressed: compressed subscribes to thermal/image_raw/compressed (sensor_msgs/CompressedImage)"
    ),
    "rgb_transport": ParamSpec(
        "raw", "raw | compressed: compressed subscribes to rgb/image_raw/compressed (sensor_msgs/CompressedImage)"
    ),
    "fused_compressed": ParamSpec(
        "", "'' | jpeg | png: also publish fused/image/compressed (sensor_msgs/CompressedImage); '' = off"
    ),
    "qos_depth": ParamSpec(
        20,
        "history depth of the subscriptions and publishers; 20 frames absorb a stalled executor (a busy CPU) "
        "without losing frames of a reliable camera",
    ),
    "no_data_warning_s": ParamSpec(5.0, "warn when a subscribed stream has been silent this long (0 = never)"),
    "diagnostics_period_s": ParamSpec(1.0, "seconds between DiagnosticArray messages on /diagnostics"),
    "diagnostics_window_s": ParamSpec(
        10.0, "seconds of recent frames the diagnostics' rates and timings are measured over (sliding window)"
    ),
    "hardware_id": ParamSpec("", "hardware_id of the diagnostics status; '' = <hostname>/<inference device>"),
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

# The values each parameter accepts, checked at start-up (the node refuses to start otherwise) and shown by
# `ros2 param describe` (the descriptor's additional_constraints). Lists of choices, or (minimum, inclusive).
CHOICES: dict[str, tuple[str, ...]] = {
    "backend": BACKENDS,
    "reliability": RELIABILITIES,
    "thermal_norm": THERMAL_NORMS,
    "size_mismatch": SIZE_MISMATCH_POLICIES,
}
MINIMUMS: dict[str, tuple[float, bool]] = {
    "queue_size": (1, True),
    "workers": (1, True),
    "qos_depth": (1, True),
    "threads": (0, True),
    "slop": (0.0, True),
    "min_interval": (0.0, True),
    "no_data_warning_s": (0.0, True),
    "summary_period_s": (0.0, True),
    "log_throttle_s": (0.0, True),
    "diagnostics_period_s": (0.0, False),
    "diagnostics_window_s": (0.0, False),
    "detector.image_size": (32, True),
}
UNIT_INTERVAL = ("detector.confidence", "detector.iou")  # 0 <= value <= 1


def constraints(name: str) -> str:
    """What ``name`` accepts, in words (the descriptor's additional_constraints; '' when any value of its type)."""
    if name in CHOICES:
        return "one of: " + ", ".join(CHOICES[name])
    if name in MINIMUMS:
        minimum, inclusive = MINIMUMS[name]
        return f"{'>=' if inclusive else '>'} {minimum}"
    if name in UNIT_INTERVAL:
        return "0.0 <= value <= 1.0"
    if name == "device":
        return "cpu, cuda or cuda:N"
    if name == "model":
        return "one of: " + ", ".join(MODEL_CHOICES) + ", or a weights file"
    if name == "thermal_percentiles":
        return "[LOW, HIGH] with 0 <= LOW < HIGH <= 100"
    if name == "thermal_range":
        return "[LOW, HIGH] with LOW < HIGH"
    if name == "homography":
        return "9 numbers (row-major 3x3)"
    return ""


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
    try:  # the preprocessing's own checks (one place for them), reported with the node parameter's name
        data_settings(cfg)
    except (ConfigError, InputError) as exc:
        raise ParameterError(str(exc).removeprefix("data.")) from None
    return cfg


def check_values(values: Mapping[str, Any]) -> None:
    """Reject values outside their allowed range, naming the parameter and what is expected."""
    for name, valid in CHOICES.items():
        if name in values and values[name] not in valid:
            raise ParameterError(f"{name}: expected one of {', '.join(valid)}, got {values[name]!r}")
    for name, (minimum, inclusive) in MINIMUMS.items():
        if name in values and not (values[name] >= minimum if inclusive else values[name] > minimum):
            kind = "an integer" if isinstance(minimum, int) else "a number"
            raise ParameterError(f"{name}: expected {kind} {constraints(name)}, got {values[name]}")
    for name in UNIT_INTERVAL:
        if name in values and not 0.0 <= float(values[name]) <= 1.0:
            raise ParameterError(f"{name}: expected a number from 0.0 to 1.0, got {values[name]}")
    if "device" in values and not DEVICE_PATTERN.fullmatch(str(values["device"])):
        raise ParameterError(f"device: expected cpu, cuda or cuda:N (N = GPU index), got {values['device']!r}")
    for name, valid in (("thermal_transport", TRANSPORTS), ("rgb_transport", TRANSPORTS)):
        if values.get(name, "raw") not in valid:
            raise ParameterError(f"{name}: expected one of {valid}, got {values[name]!r}")
    if values.get("fused_compressed", "") not in COMPRESSED_CODECS:
        raise ParameterError(
            f"fused_compressed: expected one of {COMPRESSED_CODECS} ('' = off), got {values['fused_compressed']!r}"
        )
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
