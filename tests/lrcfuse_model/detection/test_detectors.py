"""lrcfuse_model.detection.detectors, boxes and drawing: NMS, letterbox, the real YOLOv5n on MSRS, formats, drawing."""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile

import numpy as np
import pytest
import torch

from lrcfuse_model.detection.boxes import batched_nms, box_iou, letterbox, nms, scale_boxes
from lrcfuse_model.detection.detectors import (
    Detections,
    UltralyticsDetector,
    YOLOv5Detector,
    detector_format,
    load_detector,
)
from lrcfuse_model.detection.drawing import class_color, draw_detections
from lrcfuse_model.images.preprocess import InputError, read_image

HAS_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None


def yolo_labels(path, w: int, h: int) -> list[tuple[int, np.ndarray]]:
    """YOLO txt rows -> (class, x1 y1 x2 y2 in pixels)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            c, cx, cy, bw, bh = (float(v) for v in line.split())
            box = [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
            rows.append((int(c), np.array(box)))
    return rows


@pytest.fixture(scope="module")
def detector(yolov5n_weights) -> YOLOv5Detector:
    det = load_detector(yolov5n_weights)
    assert isinstance(det, YOLOv5Detector)
    return det


@pytest.fixture(scope="module")
def msrs_day(shared_data):
    image = shared_data / "msrs_test" / "vi" / "00055D.png"
    label = shared_data / "msrs_test" / "labels" / "fusion" / "00055D.txt"
    if not image.is_file() or not label.is_file():
        pytest.skip(f"MSRS image or label 00055D not found under {shared_data / 'msrs_test'}")
    return read_image(image), label


# -- NMS ---------------------------------------------------------------------------------------------------------


def test_box_iou_known_values():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert np.allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0.5, 0, 10, 10]])
    scores = np.array([0.6, 0.9, 0.5, 0.3])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]  # nothing overlaps that much
    assert nms(boxes, scores, 0.5, max_keep=1).tolist() == [1]
    assert nms(boxes[:0], scores[:0], 0.5).size == 0


def test_batched_nms_never_suppresses_across_classes():
    boxes = np.array([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = np.array([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, np.array([0, 0, 0]), 0.5).tolist() == [0]


def test_batched_nms_result_has_the_defining_properties():
    """On random boxes: kept boxes of one class overlap at most `iou`, and every dropped box overlaps a better kept
    box of its class by more than `iou` (the definition of greedy NMS)."""
    rng = np.random.default_rng(0)
    xy = rng.random((300, 2)) * 200
    wh = rng.random((300, 2)) * 60 + 5
    boxes = np.concatenate((xy, xy + wh), 1).astype(np.float32)
    scores = rng.random(300).astype(np.float32)
    classes = rng.integers(0, 3, 300)
    keep = batched_nms(boxes, scores, classes, 0.45)
    assert keep.dtype == np.int64 and np.all(scores[keep][:-1] >= scores[keep][1:])
    kept = set(keep.tolist())
    for c in range(3):
        idx = [i for i in keep.tolist() if classes[i] == c]
        iou = box_iou(boxes[idx], boxes[idx]) - np.eye(len(idx))
        assert float(iou.max()) <= 0.45
    for i in range(300):
        if i in kept:
            continue
        better = [k for k in kept if classes[k] == classes[i] and scores[k] >= scores[i]]
        assert better and float(box_iou(boxes[i : i + 1], boxes[better]).max()) > 0.45


# -- letterbox ---------------------------------------------------------------------------------------------------


def test_letterbox_pads_to_the_stride_and_maps_boxes_back():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:100, 120:180] = 255
    padded, ratio, (left, top) = letterbox(image, size=640, stride=32)
    assert ratio == pytest.approx(640 / 300)
    assert padded.shape[1] == 640 and padded.shape[0] % 32 == 0 and padded.shape[0] >= round(200 * ratio)
    assert padded[0, 0].tolist() == [114, 114, 114] and top > 0 and left == 0
    # The white square lands where ratio and padding say, and maps back to where it was.
    ys, xs = np.nonzero(padded[:, :, 0] > 200)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = scale_boxes(box, ratio, (left, top), image.shape[:2])
    assert np.allclose(back, [[120, 50, 180, 100]], atol=1.0)
    # Out-of-image boxes are clipped to the image.
    assert scale_boxes(np.array([[-50.0, -50, 5000, 5000]]), ratio, (left, top), (200, 300)).tolist() == [
        [0, 0, 300, 200]
    ]


def test_letterbox_to_a_fixed_shape_centres_the_image():
    """An exported model with a fixed input (e.g. 640 x 640): fitted into that shape, padded to exactly it."""
    image = np.full((160, 320, 3), 200, np.uint8)
    padded, ratio, (left, top) = letterbox(image, shape=(640, 640))
    assert padded.shape == (640, 640, 3) and ratio == 2.0 and (left, top) == (0.0, 160.0)
    assert padded[159, 0].tolist() == [114] * 3 and padded[160, 0].tolist() == [200] * 3
    assert padded[479, 639].tolist() == [200] * 3 and padded[480, 639].tolist() == [114] * 3
    back = scale_boxes(np.array([[0.0, 160, 640, 480]]), ratio, (left, top), image.shape[:2])
    assert back.tolist() == [[0, 0, 320, 160]]


def test_letterbox_without_resize_keeps_pixels():
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    padded, ratio, pad = letterbox(image, 640, 32)
    assert ratio == 1.0 and pad == (0.0, 0.0)
    assert np.array_equal(padded, image)


# -- the real YOLOv5n --------------------------------------------------------------------------------------------


def test_yolov5n_finds_the_labelled_objects_of_an_msrs_day_image(detector, msrs_day):
    image, label = msrs_day
    h, w = image.shape[:2]
    found = detector.detect(image)
    assert isinstance(found, Detections) and len(found) >= 3
    assert found.names[:3] == ["person", "bicycle", "car"] and len(found.names) == 80
    assert found.boxes.dtype == np.float32 and found.class_ids.dtype == np.int64
    assert np.all(found.boxes[:, [0, 2]] >= 0) and np.all(found.boxes[:, [0, 2]] <= w)
    assert np.all(found.boxes[:, [1, 3]] >= 0) and np.all(found.boxes[:, [1, 3]] <= h)
    assert np.all(found.scores >= detector.confidence)
    for cls, box in yolo_labels(label, w, h):  # two persons and a car
        same = found.boxes[found.class_ids == cls]
        assert len(same), f"no {found.names[cls]} found"
        best = float(box_iou(box[None], same).max())
        assert best > 0.5, f"{found.names[cls]} at {box.round()} found only with IoU {best:.2f}"


def test_any_size_and_gray_input_give_boxes_in_input_pixels(detector, msrs_day):
    image, label = msrs_day
    crop = image[100:400, 380:640]  # 260 x 300: letterboxed, scaled up, padded
    found = detector.detect(crop)
    assert len(found) >= 2
    assert np.all(found.boxes[:, [0, 2]] <= 260) and np.all(found.boxes[:, [1, 3]] <= 300)
    # The car (label in full-image pixels) is found at the same place in the crop's pixels.
    car = [b for c, b in yolo_labels(label, 640, 480) if c == 2][0] - np.array([380, 100, 380, 100])
    cars = found.boxes[found.class_ids == 2]
    assert len(cars) and float(box_iou(car[None], cars).max()) > 0.5
    gray = detector.detect(image.mean(2).astype(np.uint8))
    assert len(gray) >= 1


def test_class_filter_by_name_and_id(yolov5n_weights, msrs_day):
    image, _ = msrs_day
    cars = load_detector(yolov5n_weights, classes=["car"]).detect(image)
    assert len(cars) >= 1 and set(cars.class_ids.tolist()) == {2}
    persons = load_detector(yolov5n_weights, classes=[0], confidence=0.5).detect(image)
    assert len(persons) >= 2 and set(persons.class_ids.tolist()) == {0}


def test_bad_image_is_an_input_error(detector):
    with pytest.raises(InputError, match="uint8"):
        detector.detect(np.zeros((20, 20), np.float32))
    with pytest.raises(InputError, match="H x W x 3"):
        detector.detect(np.zeros((20, 20, 4), np.uint8))


# -- formats and errors ------------------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_detector(tmp_path / "nope.pt")


def test_unknown_suffix_and_unknown_content(tmp_path):
    text = tmp_path / "weights.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"unknown format '\.txt'"):
        load_detector(text)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unknown format"):
        load_detector(garbage)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"unknown format \(a dict with keys \['weights'\]\)"):
        load_detector(other)


def test_unknown_class_name_lists_the_classes(yolov5n_weights):
    with pytest.raises(ValueError, match=r"class 'tank' is not a class of .*person, bicycle, car"):
        load_detector(yolov5n_weights, classes=["car", "tank"])
    with pytest.raises(ValueError, match="class id 80 is out of range"):
        load_detector(yolov5n_weights, classes=[80])


def test_original_yolov5_pickle_is_refused_with_how_to_convert(shared_data):
    path = shared_data / "weights" / "yolov5n.pt"
    if not path.is_file():
        pytest.skip(f"original yolov5n.pt not found at {path}")
    assert detector_format(path) == "yolov5-pickle"
    with pytest.raises(ValueError, match=r"original ultralytics/yolov5 checkpoint.*Convert it once"):
        load_detector(path)


def test_meta_json_beside_bare_tensors(yolov5n_weights, tmp_path):
    blob = torch.load(yolov5n_weights, map_location="cpu", weights_only=True)
    meta = dict(blob["meta"])
    meta["names"] = [f"thing{i}" for i in range(80)]
    torch.save({"state_dict": blob["state_dict"]}, tmp_path / "mine_state_dict.pt")
    (tmp_path / "mine_meta.json").write_text(json.dumps(meta))
    det = load_detector(tmp_path / "mine_state_dict.pt")
    assert det.names[0] == "thing0"
    # A meta whose class list does not match the network is an error.
    meta["names"] = ["person", "car"]
    (tmp_path / "mine_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="2 class names but the network has 80 classes"):
        load_detector(tmp_path / "mine_state_dict.pt")


def _fake_ultralytics_checkpoint(path) -> None:
    """A torch-style zip whose pickle names an ultralytics class (protocol 2 GLOBAL; never unpickled here)."""
    pickle_bytes = b"\x80\x02cultralytics.nn.tasks\nDetectionModel\nq\x00)\x81q\x01."
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", pickle_bytes)
        archive.writestr("model/version", "3\n")


def test_ultralytics_checkpoint_is_routed_to_ultralytics(tmp_path):
    path = tmp_path / "yolo11n.pt"
    _fake_ultralytics_checkpoint(path)
    assert detector_format(path) == "ultralytics"
    assert detector_format(tmp_path) == "ultralytics"  # an OpenVINO / saved_model folder
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"")
    assert detector_format(onnx) == "onnx"  # our ONNX Runtime detector, not ultralytics (tests/.../test_onnx_yolo.py)
    if HAS_ULTRALYTICS:
        pytest.skip("ultralytics is installed: the missing-package message cannot be shown")
    with pytest.raises(ImportError, match=r'pip install "lrcfuse_ros\[ultralytics\]"'):
        load_detector(path)


def test_ultralytics_detector_runs(msrs_day):
    """The ultralytics path on a real model: needs the optional extra and a local model file (no downloads)."""
    if not HAS_ULTRALYTICS:
        pytest.skip("ultralytics not installed (optional extra lrcfuse_ros[ultralytics]; needs PyPI's full torch)")
    weights = os.environ.get("LRCFUSE_ULTRALYTICS_WEIGHTS", "")
    if not weights or not os.path.isfile(weights):
        pytest.skip("set LRCFUSE_ULTRALYTICS_WEIGHTS to a local ultralytics COCO model (nothing is downloaded)")
    det = load_detector(weights)
    assert isinstance(det, UltralyticsDetector) and "person" in det.names
    found = det.detect(msrs_day[0])
    assert len(found) >= 1 and np.all(found.boxes[:, 2] <= 640)


# -- drawing -----------------------------------------------------------------------------------------------------


def test_draw_detections_draws_on_a_copy():
    image = np.zeros((60, 80), np.uint8)
    dets = Detections(
        np.array([[10, 20, 50, 55]], np.float32), np.array([0.9], np.float32), np.array([2], np.int64), ["a", "b", "c"]
    )
    out = draw_detections(image, dets)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    assert image.max() == 0  # the input is untouched
    assert tuple(out[55, 30]) == class_color(2)  # the bottom edge of the box
    assert tuple(out[40, 10]) == class_color(2)  # the left edge
    assert tuple(out[40, 30]) == (0, 0, 0)  # inside the box
    assert draw_detections(image, Detections.empty(["a"])).max() == 0
