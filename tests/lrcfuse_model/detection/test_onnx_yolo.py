"""lrcfuse_model.detection.onnx_yolo: YOLO exports on real ONNX Runtime.

Our YOLOv5n exported to ONNX must find what the PyTorch network finds on a real MSRS image; the ultralytics
YOLOv8/YOLO11 layout is checked by running a real ONNX graph whose output is a hand-made tensor with known boxes.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from lrcfuse_model.dependencies import MissingDependency
from lrcfuse_model.detection.boxes import box_iou
from lrcfuse_model.detection.detectors import YOLOv5Detector, detector_format, load_detector
from lrcfuse_model.detection.onnx_yolo import OnnxYoloDetector, OutputLayout, export_yolov5_onnx, output_layout
from lrcfuse_model.images.preprocess import read_image

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason='needs onnx and onnxruntime (pip install "lrcfuse_ros[export]")',
)

COCO3 = {0: "person", 1: "bicycle", 2: "car"}


def constant_output_model(path, output: np.ndarray, names: dict | None = COCO3, input_hw=(640, 640)) -> None:
    """A real ONNX model: input ``images`` [1, 3, H, W], output ``output0`` = ``output`` whatever the image, with
    class names in the metadata as ultralytics writes them."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *input_hw])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    node = helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(output.astype(np.float32)))
    graph = helper.make_graph([node], "hand_made_yolo", [images], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = {"stride": "32", "task": "detect", "imgsz": str(list(input_hw))}
    if names is not None:
        props["names"] = str(names)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def v8_output(candidates: list[tuple[float, float, float, float, int, float]], n: int = 20, nc: int = 3) -> np.ndarray:
    """[1, 4+nc, n]: candidate i is column i (cx, cy, w, h in network pixels, then its one class score)."""
    out = np.zeros((1, 4 + nc, n), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(candidates):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


# -- the ultralytics YOLOv8 / YOLO11 layout --------------------------------------------------------------------


def test_v8_layout_decodes_hand_made_boxes_back_to_image_pixels(tmp_path):
    """A 320 x 160 image in a fixed 640 x 640 input: scale 2, 160 px of gray above. Known boxes come back in the
    image's pixels; a shifted duplicate of the same class is suppressed, the same box of another class is kept, a
    score under the threshold is dropped."""
    output = v8_output(
        [
            (200, 300, 100, 60, 2, 0.9),  # car: letterbox (150, 270, 250, 330) -> image (75, 55, 125, 85)
            (202, 301, 100, 60, 2, 0.8),  # the same car again, worse: NMS drops it
            (200, 300, 100, 60, 0, 0.7),  # a person at the same place: another class, kept
            (500, 400, 40, 80, 1, 0.6),  # bicycle: (480, 360, 520, 440) -> (240, 100, 260, 140)
            (100, 500, 20, 20, 0, 0.1),  # under confidence 0.25
        ]
    )
    path = tmp_path / "yolo11_hand_made.onnx"
    constant_output_model(path, output)
    assert detector_format(path) == "onnx"
    det = load_detector(path)
    assert isinstance(det, OnnxYoloDetector)
    assert (
        det.layout == OutputLayout("v8", 3) and det.names == ["person", "bicycle", "car"] and det.input_hw == (640, 640)
    )
    found = det.detect(np.zeros((160, 320, 3), np.uint8))
    assert found.class_names() == ["car", "person", "bicycle"]
    assert np.allclose(found.scores, [0.9, 0.7, 0.6])
    assert np.allclose(found.boxes, [[75, 55, 125, 85], [75, 55, 125, 85], [240, 100, 260, 140]], atol=1e-4)
    bikes = load_detector(path, classes=["bicycle"]).detect(np.zeros((160, 320), np.uint8))  # gray works too
    assert bikes.class_names() == ["bicycle"]
    assert len(load_detector(path, confidence=0.95).detect(np.zeros((160, 320, 3), np.uint8))) == 0


def test_v8_layout_without_names_counts_the_classes(tmp_path):
    path = tmp_path / "no_names.onnx"
    constant_output_model(path, v8_output([(320, 320, 64, 64, 4, 0.8)], n=30, nc=6), names=None)
    det = load_detector(path)
    assert det.layout == OutputLayout("v8", 6) and det.names == [f"class{i}" for i in range(6)]
    assert det.detect(np.zeros((640, 640, 3), np.uint8)).class_names() == ["class4"]


def test_layout_from_the_output_shape():
    assert output_layout([1, 84, 8400], 80) == OutputLayout("v8", 80)
    assert output_layout([1, 84, 8400]) == OutputLayout("v8", 80)
    assert output_layout([1, 25200, 85], 80) == OutputLayout("v5", 80)
    assert output_layout([1, 25200, 85]) == OutputLayout("v5", 80)
    # 37 classes and [1, 41, 42] fit both; a 64 x 32 input has 42 cells at strides 8, 16, 32 (32 + 8 + 2): the
    # anchor-free head has one candidate per cell, YOLOv5 three, so this is the anchor-free layout.
    assert output_layout([1, 41, 42], 37, input_hw=(64, 32)) == OutputLayout("v8", 37)
    with pytest.raises(ValueError, match=r"\[1, 41, 42\] with 37 classes fits both layouts"):
        output_layout([1, 41, 42], 37)
    with pytest.raises(ValueError, match=r"\[1, 84, 85\] with 80 classes fits both layouts"):
        output_layout([1, 84, 85], 80)
    with pytest.raises(ValueError, match=r"\[1, 300, 6\] with 80 classes fits neither layout.*end-to-end"):
        output_layout([1, 300, 6], 80)
    with pytest.raises(ValueError, match=r"\[1, 116, 8400\] with 80 classes fits neither"):  # a segmentation head
        output_layout([1, 116, 8400], 80)
    with pytest.raises(ValueError, match=r"fits both layouts"):
        output_layout([1, 90, 90])
    with pytest.raises(ValueError, match=r"shape \[1, 3, 80, 80, 85\]: expected \[1, 4\+nc, N\]"):
        output_layout([1, 3, 80, 80, 85], 80)


def test_unknown_layout_fails_when_the_model_loads(tmp_path):
    path = tmp_path / "end2end.onnx"
    constant_output_model(path, np.zeros((1, 300, 6), np.float32), names={i: f"c{i}" for i in range(80)})
    with pytest.raises(ValueError, match=r"end2end\.onnx: YOLO output of shape \[1, 300, 6\] with 80 classes"):
        load_detector(path)


def test_not_an_onnx_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"this is not a protobuf")
    with pytest.raises(ValueError, match=r"broken\.onnx: ONNX Runtime cannot load it"):
        load_detector(path)


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    constant_output_model(path, v8_output([]))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as on a machine without it
    with pytest.raises(
        MissingDependency, match=r'needs onnxruntime, which is not installed: pip install "lrcfuse_ros\[export\]"'
    ):
        load_detector(path)


# -- our YOLOv5n through ONNX ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yolov5n_onnx(yolov5n_weights, tmp_path_factory):
    if importlib.util.find_spec("onnxscript") is None:
        pytest.skip('exporting needs onnxscript (pip install "lrcfuse_ros[export]")')
    return export_yolov5_onnx(yolov5n_weights, tmp_path_factory.mktemp("onnx") / "yolov5n.onnx")


@pytest.mark.parametrize("image_name", ["00537D/vi", "00537D/ir", "00055D/vi"])
def test_yolov5n_onnx_matches_pytorch_on_msrs(yolov5n_weights, yolov5n_onnx, shared_data, image_name):
    """The same letterbox and post-processing on both runtimes: the same detections in the same order, the same
    classes, box IoU >= 0.99. Confidence 0.1 (not 0.25) so that more, and weaker, boxes are compared."""
    name, modality = image_name.split("/")
    path = shared_data / "msrs_test" / modality / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"MSRS image {path} not found")
    image = read_image(path)
    torch_det = load_detector(yolov5n_weights, confidence=0.1)
    onnx_det = load_detector(yolov5n_onnx, confidence=0.1)
    assert isinstance(torch_det, YOLOv5Detector) and isinstance(onnx_det, OnnxYoloDetector)
    assert onnx_det.layout == OutputLayout("v5", 80) and onnx_det.names == torch_det.names and onnx_det.stride == 32
    expected, found = torch_det.detect(image), onnx_det.detect(image)
    assert len(expected) >= 3
    assert found.class_names() == expected.class_names()
    iou = np.diag(box_iou(expected.boxes, found.boxes))
    print(
        f"\n{image_name}: {len(found)} detections on both, classes {sorted(set(found.class_names()))}, "
        f"min box IoU {iou.min():.6f}, max score difference {np.abs(found.scores - expected.scores).max():.2e}"
    )
    assert iou.min() >= 0.99
    assert np.allclose(found.scores, expected.scores, atol=2e-3)
