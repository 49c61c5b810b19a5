"""lrcfuse_model._moved and the package face: the public API, and every old flat module path still importing."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import lrcfuse_model
from lrcfuse_model._moved import MOVED, SpreadModule

# Every module of lrcfuse_model 0.1.0's flat layout, and names of it that users are likely to have imported.
OLD_NAMES: dict[str, list[str]] = {
    "backends": [
        "BACKEND_NAMES", "Backend", "BackendUnavailable", "OnnxRuntimeBackend", "TensorRTBackend", "TorchBackend",
        "auto_order", "create_backend", "require_tensorrt", "tensorrt_available", "_cuda_index", "_import_tensorrt",
    ],
    "bag": ["fuse_bag", "cmd_fuse_bag", "summary", "absolute_topic"],
    "bench": ["run_bench", "cmd_bench", "format_report", "count_macs", "time_backend", "measure", "RECORD_KEYS"],
    "config": ["resolve", "load_defaults", "ConfigError", "parse_size", "split_list", "DEFAULTS_PATH"],
    "data": ["PatchSampler", "collect_pairs"],
    "detect_eval": [
        "detect_eval", "cmd_detect_eval", "coco_ap", "GroundTruth", "ClassAP", "Input", "LabelledDataset",
        "parse_inputs", "make_input", "map_classes", "read_classes", "read_yolo_labels", "resolve_labelled_datasets",
        "export_yolo_datasets", "table_markdown", "plot_pr_curves", "make_detection_grid",
    ],
    "detectors": [
        "Detections", "Detector", "YOLOv5Detector", "UltralyticsDetector", "load_detector", "detector_format",
        "draw_detections", "label_font", "class_color", "letterbox", "scale_boxes", "box_iou", "nms", "batched_nms",
    ],
    "evaluate": [
        "evaluate", "EvalResult", "Method", "Dataset", "parse_methods", "resolve_datasets", "run_dataset",
        "summarise", "rank_table", "summary_markdown", "plot_bars", "make_grid", "choose_zoom_box", "add_zoom",
        "write_csv", "spaced_indices", "source_gray", "fused_gray", "ALL_METHODS", "LOWER_IS_BETTER",
    ],
    "export": [
        "export_onnx", "cached_onnx", "cached_engine", "build_engine", "engine_cache_key", "onnx_operators",
        "file_sha256", "profile_shapes", "check_parity", "cmd_export", "ONNX_OPSET",
    ],
    "feature_nets": ["build_feature_net", "FeatureNetwork", "VGG16Features", "YOLOv5Features", "load_vgg16"],
    "fusion": ["Fuser", "fuse", "fuse_folders", "FolderReport", "load_model", "load_pretrained", "save_weights",
               "DEFAULT_WEIGHTS", "WEIGHTS_DIR"],
    "image_msg": ["image_msg_to_array", "fill_image_msg", "array_to_image_fields", "stamp_to_seconds",
                  "THERMAL_ENCODINGS", "RGB_ENCODINGS"],
    "loss": ["FusionLoss", "TERMS", "gram", "sobel_magnitude"],
    "metrics": ["compute_all", "METRIC_KEYS", "entropy", "ssim", "qabf", "vif"],
    "model": ["LRCFuse", "LRCFuseConfig", "count_parameters", "soft_threshold"],
    "pairing": ["find_pairs", "dataset_pairs", "Pair", "Unpaired", "IMAGE_SUFFIXES"],
    "preprocess": ["read_image", "prepare_pair", "finish", "InputError", "describe_error", "load_homography",
                   "normalize_thermal", "rgb_to_ycbcr", "PreparedPair", "data_settings"],
    "stamp_sync": ["ApproximateTimeSync", "StampedPair"],
    "train": ["Trainer", "CSV_FIELDS", "plot_loss_curves"],
    "yolov5": ["YOLOv5", "load_yolov5", "load_checkpoint_tensors", "make_divisible"],
}  # fmt: skip

PUBLIC_API = [
    "LRCFuse", "LRCFuseConfig", "load_pretrained", "load_model", "save_weights", "fuse", "Fuser", "create_backend",
    "Backend", "BACKEND_NAMES", "count_parameters", "__version__",
]  # fmt: skip


def forget(monkeypatch: pytest.MonkeyPatch, old: str) -> None:
    """Make ``lrcfuse_model.<old>`` unimported for this test (restored afterwards)."""
    monkeypatch.delitem(sys.modules, f"lrcfuse_model.{old}", raising=False)
    if old in vars(lrcfuse_model):  # not hasattr: the package's __getattr__ would import the old path
        monkeypatch.delattr(lrcfuse_model, old)


def test_every_old_module_is_covered() -> None:
    assert set(OLD_NAMES) - {"config"} == set(MOVED)


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_old_path_imports_and_names_the_new_one(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    forget(monkeypatch, old)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"lrcfuse_model.{old}")
    moved = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    if old == "config":  # it did not move
        assert not moved and module.__name__ == "lrcfuse_model.config"
    else:
        (warning,) = moved
        assert all(home in str(warning.message) for home in MOVED[old])
        assert warning.filename == __file__  # points at the importing line, not at the import machinery
    for name in OLD_NAMES[old]:
        assert hasattr(module, name), f"lrcfuse_model.{old}.{name}"
    assert getattr(lrcfuse_model, old) is module


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_module_that_moved_whole_is_the_new_module(old: str, monkeypatch: pytest.MonkeyPatch) -> None:
    forget(monkeypatch, old)
    with pytest.warns(DeprecationWarning):
        module = importlib.import_module(f"lrcfuse_model.{old}")
    homes = [importlib.import_module(h) for h in MOVED[old]]
    if len(homes) == 1:
        assert module is homes[0]
        assert module.__spec__.name == MOVED[old][0]  # it keeps its own name and spec
    else:
        assert isinstance(module, SpreadModule)
        for name in module.__all__:
            assert getattr(module, name) is next(getattr(h, name) for h in homes if hasattr(h, name))
        with pytest.raises(AttributeError, match="moved to"):
            module.no_such_name  # noqa: B018


def test_from_imports_of_the_common_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for old in ("fusion", "metrics", "model"):
        forget(monkeypatch, old)
    with pytest.warns(DeprecationWarning, match="lrcfuse_model.inference.fuser"):
        from lrcfuse_model.fusion import Fuser, load_model
    with pytest.warns(DeprecationWarning, match="lrcfuse_model.evaluation.metrics"):
        from lrcfuse_model import metrics
    with pytest.warns(DeprecationWarning, match="lrcfuse_model.nn.model"):
        import lrcfuse_model.model
    from lrcfuse_model.evaluation.metrics import compute_all
    from lrcfuse_model.inference.fuser import Fuser as NewFuser
    from lrcfuse_model.nn.checkpoint import load_model as new_load_model

    assert Fuser is NewFuser and load_model is new_load_model and metrics.compute_all is compute_all
    assert lrcfuse_model.model.LRCFuse is lrcfuse_model.LRCFuse


def test_unknown_names_still_fail() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("lrcfuse_model.no_such_module")
    with pytest.raises(AttributeError, match="no_such_name"):
        lrcfuse_model.no_such_name  # noqa: B018


def test_public_api() -> None:
    assert sorted(lrcfuse_model.__all__) == sorted(PUBLIC_API)
    for name in PUBLIC_API:
        assert getattr(lrcfuse_model, name) is not None
        assert name in dir(lrcfuse_model)
    assert lrcfuse_model.LRCFuse.__module__ == "lrcfuse_model.nn.model"
    assert lrcfuse_model.fuse.__module__ == "lrcfuse_model.inference.fuser"
    assert lrcfuse_model.create_backend.__module__ == "lrcfuse_model.inference.backends"
    assert lrcfuse_model.load_pretrained.__module__ == "lrcfuse_model.nn.checkpoint"


def test_the_package_is_lazy_and_installs_one_finder() -> None:
    """``import lrcfuse_model`` (and its config) imports no torch; reloading it does not stack finders."""
    code = (
        "import importlib, sys, lrcfuse_model, lrcfuse_model.config, lrcfuse_model.malloc_tuning\n"
        "lazy = 'torch' not in sys.modules\n"
        "importlib.reload(lrcfuse_model)\n"
        "finders = [type(f).__name__ for f in sys.meta_path].count('MovedModuleFinder')\n"
        "net = lrcfuse_model.LRCFuse()\n"
        "print(lazy, finders, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "1", "True"]


def test_an_old_import_warns_at_the_users_line_by_default() -> None:
    """A script's own old import shows its DeprecationWarning under Python's default filters."""
    out = subprocess.run(
        [sys.executable, "-c", "from lrcfuse_model.pairing import find_pairs"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "<string>:1: DeprecationWarning: lrcfuse_model.pairing moved" in out.stderr
