"""lrcfuse_model.nn.yolov5: the YOLOv5 builder, checked against the real COCO YOLOv5n weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lrcfuse_model.nn.yolov5 import YOLOv5, load_checkpoint_tensors, load_yolov5, make_divisible

YOLOV5N_PARAMETERS = 1_872_157


@pytest.fixture(scope="module")
def yolo(yolov5n_weights):
    return load_yolov5(yolov5n_weights)


def test_full_network_parameter_count(yolo):
    assert sum(p.numel() for p in yolo.parameters()) == YOLOV5N_PARAMETERS
    assert not yolo.training
    assert yolo.names[0] == "person" and len(yolo.names) == 80
    assert torch.equal(yolo.model[-1].stride, torch.tensor([8.0, 16.0, 32.0]))


def test_detects_the_labelled_person_in_msrs(yolo, shared_data):
    """End-to-end check of the builder: real weights, real image, the labelled person is found."""
    image_path = shared_data / "msrs_test" / "vi" / "00055D.png"
    label_path = shared_data / "msrs_test" / "labels" / "fusion" / "00055D.txt"
    if not image_path.is_file() or not label_path.is_file():
        pytest.skip(f"MSRS test image or label not found under {shared_data / 'msrs_test'}")
    rgb = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32) / 255.0
    h, w = rgb.shape[:2]
    assert (w, h) == (640, 480)
    cls, cx, cy, bw, bh = (float(v) for v in label_path.read_text().split("\n")[0].split())
    assert cls == 0
    target = torch.tensor([cx * w, cy * h])  # about (534, 243)

    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        decoded, raw = yolo(x)
    assert decoded.shape == (1, 3 * (80 * 60 + 40 * 30 + 20 * 15), 85)
    assert [r.shape[1:4] for r in raw] == [(3, 60, 80), (3, 30, 40), (3, 15, 20)]
    rows = decoded[0]
    scores, classes = (rows[:, 4:5] * rows[:, 5:]).max(1)
    persons = rows[(classes == 0) & (scores > 0.4)]
    assert len(persons) > 0
    distance = (persons[:, :2] - target).norm(dim=1)
    best = distance.argmin()
    assert distance[best] < 10.0  # pixels
    # The box size matches the label too (within 30 %).
    assert abs(persons[best, 3] / (bh * h) - 1) < 0.3
    assert abs(persons[best, 2] / (bw * w) - 1) < 0.3


def test_upto_builds_only_the_first_layers(yolov5n_weights):
    net = load_yolov5(yolov5n_weights, upto=6)
    assert len(net.model) == 7
    assert net.channels == [16, 32, 32, 64, 64, 128, 128]
    feats = net.forward_features(torch.rand(1, 3, 64, 64), [0, 2, 4, 6])
    assert [tuple(f.shape) for f in feats] == [(1, 16, 32, 32), (1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4)]


def test_backbone_weights_equal_the_full_network(yolov5n_weights, yolo):
    net = load_yolov5(yolov5n_weights, upto=4)
    full = yolo.state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(value, full[key]), key


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_yolov5(path)


def test_missing_tensor_is_named(yolov5n_weights, tmp_path):
    blob = torch.load(yolov5n_weights, map_location="cpu", weights_only=True)
    removed = "model.2.cv1.conv.weight"
    assert removed in blob["state_dict"]
    del blob["state_dict"][removed]
    broken = tmp_path / "broken.pt"
    torch.save(blob, broken)
    with pytest.raises(ValueError) as info:
        load_yolov5(broken)
    assert removed in str(info.value)
    assert "missing" in str(info.value)
    with pytest.raises(ValueError, match=removed):
        load_yolov5(broken, upto=6)  # also for the backbone-only build


def test_wrong_shape_is_named(yolov5n_weights, tmp_path):
    blob = torch.load(yolov5n_weights, map_location="cpu", weights_only=True)
    blob["state_dict"]["model.0.bn.weight"] = torch.ones(3)
    broken = tmp_path / "shape.pt"
    torch.save(blob, broken)
    with pytest.raises(ValueError, match=r"wrong shape \['model.0.bn.weight'\]"):
        load_yolov5(broken)


def test_file_without_expected_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"expected keys 'state_dict' and 'meta'.*\['weights'\]"):
        load_checkpoint_tensors(path)


def test_non_torch_file_is_a_value_error(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="not a plain-tensor YOLOv5 file"):
        load_yolov5(path)


def test_unsupported_module_is_rejected():
    spec = {
        "nc": 80,
        "depth_multiple": 0.33,
        "width_multiple": 0.25,
        "anchors": [[10, 13]],
        "backbone": [[-1, 1, "Focus", [64, 3]]],
        "head": [],
    }
    with pytest.raises(ValueError, match="unsupported module 'Focus'"):
        YOLOv5(spec)


def test_make_divisible():
    assert make_divisible(16) == 16
    assert make_divisible(17) == 24
    assert make_divisible(64 * 0.25) == 16
    assert make_divisible(1) == 8


def test_detect_in_training_mode_returns_raw_maps(yolov5n_weights):
    net = load_yolov5(yolov5n_weights).train()
    out = net(torch.rand(1, 3, 64, 64))
    assert isinstance(out, list) and len(out) == 3
    assert [tuple(o.shape) for o in out] == [(1, 3, 8, 8, 85), (1, 3, 4, 4, 85), (1, 3, 2, 2, 85)]


def test_meta_given_separately_completes_a_bare_state_dict(yolov5n_weights, tmp_path):
    blob = torch.load(yolov5n_weights, map_location="cpu", weights_only=True)
    bare = tmp_path / "bare.pt"
    torch.save({"state_dict": blob["state_dict"]}, bare)
    with pytest.raises(ValueError, match="expected keys 'state_dict' and 'meta'"):
        load_yolov5(bare)
    net = load_yolov5(bare, meta={**blob["meta"], "names": ["x"] * 80})
    assert net.names[0] == "x" and torch.equal(net.model[-1].stride, torch.tensor([8.0, 16.0, 32.0]))
