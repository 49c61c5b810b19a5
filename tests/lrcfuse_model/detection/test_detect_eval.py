"""lrcfuse_model.detection (detect-eval): COCO mAP with the real COCOeval, labels, inputs, the CLI on MSRS pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lrcfuse_model.cli import main
from lrcfuse_model.config import ConfigError
from lrcfuse_model.detection.coco import GroundTruth, coco_ap
from lrcfuse_model.detection.detectors import Detections
from lrcfuse_model.detection.inputs import make_input, parse_inputs
from lrcfuse_model.detection.labels import map_classes, read_classes, read_yolo_labels, resolve_labelled_datasets
from lrcfuse_model.detection.yolo_export import export_yolo_datasets
from lrcfuse_model.images.preprocess import InputError

NAMES = ["person", "bicycle", "car"]


def write_labelled(root: Path, labels: dict[str, str], size_hw=(48, 64), subfolder: str = "fusion") -> Path:
    """Random pairs ``root/{ir,vi}/<name>.png`` with YOLO txt ``labels[name]`` and ``classes.txt``."""
    rng = np.random.default_rng(0)
    for d in ("ir", "vi", f"labels/{subfolder}" if subfolder else "labels"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, text in labels.items():
        Image.fromarray(rng.integers(0, 256, size_hw, dtype=np.uint8)).save(root / "ir" / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (*size_hw, 3), dtype=np.uint8)).save(root / "vi" / f"{name}.png")
        if text is not None:
            (root / "labels" / subfolder / f"{name}.txt").write_text(text)
    (root / "labels" / "classes.txt").write_text("0 person\n1 bicycle\n2 car\n")
    return root


# -- mAP with the real COCOeval ----------------------------------------------------------------------------------


def _synthetic_truth() -> tuple[GroundTruth, dict[int, list[tuple]]]:
    gt = GroundTruth(classes={0: "person", 2: "car"})
    boxes = {
        1: [(0, 10.0, 10.0, 40.0, 90.0), (2, 100.0, 50.0, 180.0, 100.0)],
        2: [(0, 60.0, 20.0, 80.0, 70.0)],
        3: [(2, 5.0, 5.0, 60.0, 40.0), (2, 120.0, 80.0, 190.0, 140.0)],
    }
    for i, rows in boxes.items():
        assert gt.add_image(f"img{i}", 200, 150, rows) == i
    return gt, boxes


def _detections(boxes: dict[int, list[tuple]], shift: float = 0.0) -> dict[int, Detections]:
    out = {}
    for i, rows in boxes.items():
        xyxy = np.array([r[1:] for r in rows], np.float32)
        xyxy[:, [0, 2]] += shift * (xyxy[:, 2:3] - xyxy[:, 0:1])  # move right by a fraction of the width
        out[i] = Detections(
            xyxy, np.full(len(rows), 0.9, np.float32), np.array([r[0] for r in rows], np.int64), NAMES
        )
    return out


def test_perfect_detections_score_one():
    gt, boxes = _synthetic_truth()
    aps = coco_ap(gt, _detections(boxes), [0, 1, 2], {0: 0, 1: 1, 2: 2})
    assert [a.name for a in aps] == ["person", "car", "all"]  # bicycle has no ground truth: not scored
    for a in aps:
        assert a.map50 == pytest.approx(1.0) and a.map50_95 == pytest.approx(1.0)
        assert a.precision50.shape == (101,) and np.nanmin(a.precision50) == pytest.approx(1.0)


def test_shifted_boxes_score_less():
    gt, boxes = _synthetic_truth()
    # A shift of 20 % of the width: IoU = 0.8 / 1.2 = 0.67, a hit at 0.5 but a miss from IoU 0.7 on.
    aps = {a.name: a for a in coco_ap(gt, _detections(boxes, 0.2), [0, 2], {0: 0, 2: 2})}
    assert aps["all"].map50 == pytest.approx(1.0)
    assert 0.1 < aps["all"].map50_95 < 0.5
    # A shift of 60 %: IoU = 0.4 / 1.6 = 0.25, no hit at all.
    far = {a.name: a for a in coco_ap(gt, _detections(boxes, 0.6), [0, 2], {0: 0, 2: 2})}
    assert far["all"].map50 == pytest.approx(0.0) and far["all"].map50_95 == pytest.approx(0.0)


def test_missed_objects_and_false_positives_lower_ap():
    gt, boxes = _synthetic_truth()
    dets = _detections(boxes)
    dets.pop(3)  # both cars of image 3 missed: car recall 1/3
    aps = {a.name: a for a in coco_ap(gt, dets, [0, 2], {0: 0, 2: 2})}
    assert aps["person"].map50 == pytest.approx(1.0)
    assert aps["car"].map50 == pytest.approx(34 / 101, abs=1e-6)  # precision 1 at recall points 0..0.33
    # A detector class that is not evaluated (bicycle here) is ignored, and restricting the images restricts
    # the ground truth too.
    only_two = coco_ap(gt, _detections(boxes), [0, 2], {0: 0, 2: 2}, image_ids=[1, 2])
    assert only_two[-1].map50 == pytest.approx(1.0)
    assert coco_ap(gt, {}, [0, 2], {0: 0, 2: 2})[-1].map50 == 0.0


def test_detector_class_ids_are_mapped_to_dataset_ids():
    gt, boxes = _synthetic_truth()
    detector_names = ["bus", "Car", "person"]  # another detector's ids: person 2, car 1
    to_detector = map_classes({0: "person", 2: "car"}, detector_names)
    assert to_detector == {0: 2, 2: 1}  # by name, case-insensitive
    to_dataset = {d: c for c, d in to_detector.items()}
    dets = {
        i: Detections(d.boxes, d.scores, np.array([to_detector[int(c)] for c in d.class_ids]), detector_names)
        for i, d in _detections(boxes).items()
    }
    assert coco_ap(gt, dets, [0, 2], to_dataset)[-1].map50 == pytest.approx(1.0)
    # Read with the wrong mapping, every detection has the wrong class.
    assert coco_ap(gt, dets, [0, 2], {0: 0, 1: 1, 2: 2})[-1].map50 == pytest.approx(0.0)


def test_map_classes_names_a_missing_class():
    with pytest.raises(ConfigError, match=r"dataset class\(es\) lamp are not classes of yolo; its classes: person"):
        map_classes({0: "person", 1: "lamp"}, ["person", "car"], "yolo")


# -- labels, datasets, inputs ------------------------------------------------------------------------------------


def test_read_yolo_labels_to_pixels_and_bad_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0  0.5 0.5 0.5 0.25  \n\n2 0.1 0.1 0.4 0.4\n")
    rows = read_yolo_labels(path, 200, 100)
    assert rows[0] == (0, 50.0, 37.5, 150.0, 62.5)
    assert rows[1][0] == 2 and rows[1][1:3] == (0.0, 0.0)  # clipped to the image
    path.write_text("0 0.5 0.5 0.5\n")
    with pytest.raises(InputError, match=r"a.txt line 1: expected 'class cx cy w h'"):
        read_yolo_labels(path, 200, 100)
    with pytest.raises(InputError, match="no label file"):
        read_yolo_labels(tmp_path / "missing.txt", 200, 100)


def test_read_classes_both_layouts(tmp_path):
    (tmp_path / "a.txt").write_text("0 person\n2 car\n")
    assert read_classes(tmp_path / "a.txt") == {0: "person", 2: "car"}
    (tmp_path / "b.txt").write_text("People\nCar\n")
    assert read_classes(tmp_path / "b.txt") == {0: "People", 1: "Car"}


def test_resolve_datasets_finds_labels(tmp_path):
    a = write_labelled(tmp_path / "a", {"p0": "0 0.5 0.5 0.2 0.2\n"})
    flat = write_labelled(tmp_path / "flat", {"p0": "0 0.5 0.5 0.2 0.2\n"}, subfolder="")
    got = resolve_labelled_datasets([f"{a},{flat}"])
    assert [d.labels_dir for d in got] == [a / "labels" / "fusion", flat / "labels"]
    assert got[0].classes == {0: "person", 1: "bicycle", 2: "car"}
    for d in ("ir", "vi", "labels/fusion"):
        (tmp_path / "b" / d).mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"no labels/visible/ .*its label folders: fusion"):
        resolve_labelled_datasets([str(tmp_path / "b")], labels="visible")
    with pytest.raises(ConfigError, match="no ir/ and no vi/ folder"):
        resolve_labelled_datasets([str(tmp_path / "nothing")])


def test_parse_inputs():
    inputs = parse_inputs(["ir,vi", "average", "ours"])
    assert [(i.name, i.kind) for i in inputs] == [("ir", "ir"), ("vi", "vi"), ("average", "average"), ("ours", "ours")]
    assert parse_inputs("mine=/tmp/x")[0].kind == "folder"
    with pytest.raises(ConfigError, match="unknown method 'thermal'"):
        parse_inputs("ir,thermal")
    with pytest.raises(ConfigError, match="given twice: ir"):
        parse_inputs("ir,vi,ir")


def test_make_input_fuses_through_the_preprocessing_path():
    rng = np.random.default_rng(1)
    ir = rng.integers(0, 256, (8, 10), dtype=np.uint8)
    vi_gray = rng.integers(0, 256, (8, 10), dtype=np.uint8)
    average = make_input("average", ir, vi_gray)
    expected = ((ir.astype(np.float32) / 255 + vi_gray.astype(np.float32) / 255) / 2 * 255 + 0.5).astype(np.uint8)
    assert np.abs(average.astype(int) - expected).max() <= 1
    assert np.array_equal(make_input("max", ir, vi_gray), np.maximum(ir, vi_gray))
    vi_rgb = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    assert make_input("average", ir, vi_rgb).shape == (8, 10, 3)  # the visible chroma comes back
    assert make_input("vi", ir, vi_rgb) is vi_rgb
    assert np.array_equal(make_input("ir", ir, vi_rgb), ir)  # an 8-bit thermal image is used as it is
    ir16 = (ir.astype(np.uint16) * 200).astype(np.uint16)
    assert make_input("ir", ir16, vi_rgb).dtype == np.uint8


# -- the whole run -----------------------------------------------------------------------------------------------


def _msrs_pairs(shared_data: Path, tmp_path: Path, names=("00055D", "00004N")) -> Path:
    """Two real MSRS pairs with their fusion labels, linked into a small dataset folder."""
    src = shared_data / "msrs_test"
    root = tmp_path / "msrs2"
    for d in ("ir", "vi", "labels/fusion"):
        (root / d).mkdir(parents=True)
    for n in names:
        for d, suffix in (("ir", ".png"), ("vi", ".png"), ("labels/fusion", ".txt")):
            if not (src / d / f"{n}{suffix}").is_file():
                pytest.skip(f"MSRS pair {n} not found under {src}")
            (root / d / f"{n}{suffix}").symlink_to((src / d / f"{n}{suffix}").resolve())
    (root / "labels" / "classes.txt").symlink_to((src / "labels" / "classes.txt").resolve())
    return root


def test_cli_on_two_real_msrs_pairs(shared_data, yolov5n_weights, tmp_path, capsys):
    root = _msrs_pairs(shared_data, tmp_path)
    out, records_path = tmp_path / "out", tmp_path / "rec" / "records.json"
    code = main(
        [
            "detect-eval",
            "--dataset", str(root),
            "--methods", "ir,vi",
            "--detector", str(yolov5n_weights),
            "--out", str(out),
            "--json", str(records_path),
            "--grid-images", "1",
            "--threads", "1",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    records = json.loads(records_path.read_text())
    assert records == json.loads((out / "records.json").read_text())
    assert [(r["input"], r["class"]) for r in records] == [
        (i, c) for i in ("ir", "vi") for c in ("person", "car", "all")  # no bicycle in these two pairs
    ]
    for r in records:
        assert set(r) == {"input", "class", "map50", "map50_95"}
        assert 0.0 <= r["map50_95"] <= r["map50"] <= 1.0
    by = {(r["input"], r["class"]): r for r in records}
    assert by[("vi", "car")]["map50"] > 0.5  # the daytime car is plain to see
    assert by[("ir", "all")]["map50"] > 0.2
    table = (out / "table.md").read_text()
    assert "| ir | 2 |" in table and "| vi | 2 |" in table and "person mAP50" in table
    with open(out / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and rows[0]["objects"] and rows[0]["images"] == "2"
    assert (out / "pr_curves.png").stat().st_size > 1000
    assert Image.open(out / "grid.jpg").size[0] > 2 * 360
    assert "person mAP50" in capsys.readouterr().out


def test_a_pair_without_labels_is_recorded_and_the_run_goes_on(yolov5n_weights, tmp_path, capsys):
    root = write_labelled(tmp_path / "data", {"p0": "0 0.5 0.5 0.3 0.6\n", "p1": None, "p2": "2 0.3 0.3 0.2 0.2\n"})
    out = tmp_path / "out"
    code = main(
        ["detect-eval", "--dataset", str(root), "--methods", "ir,max", "--detector", str(yolov5n_weights),
         "--out", str(out), "--grid-images", "0", "--threads", "1"]
    )  # fmt: skip
    assert code == 1
    assert "p1" in capsys.readouterr().err
    with open(out / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    assert [(r["input"], r["image"]) for r in failures] == [("(all)", "p1")]
    assert "no label file" in failures[0]["error"]
    run = json.loads((out / "run.json").read_text())
    assert run["pairs"] == 2 and run["objects"]["all"] == 2
    records = json.loads((out / "records.json").read_text())
    assert {r["input"] for r in records} == {"ir", "max"}
    assert not (out / "grid.jpg").exists()


def test_cli_errors_are_clear(yolov5n_weights, tmp_path, capsys):
    root = write_labelled(tmp_path / "data", {"p0": "0 0.5 0.5 0.3 0.6\n"})
    assert main(["detect-eval", "--dataset", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "no detector given" in capsys.readouterr().err
    (root / "labels" / "classes.txt").write_text("0 person\n1 lamp\n")
    assert main(["detect-eval", "--dataset", str(root), "--detector", str(yolov5n_weights)]) == 2
    assert "lamp are not classes of yolov5" in capsys.readouterr().err
    assert main(["detect-eval", "--dataset", str(root), "--detector", str(tmp_path / "none.pt")]) == 2
    assert "none.pt do not exist" in capsys.readouterr().err


def test_export_yolo_writes_an_8_1_1_split(tmp_path):
    labels = {f"p{i}": f"{i % 3} 0.5 0.5 0.2 0.2\n" for i in range(10)}
    root = write_labelled(tmp_path / "data", labels, size_hw=(16, 16))
    written = export_yolo_datasets([str(root)], "ir,average", tmp_path / "yolo", progress=False)
    assert [p.parent.name for p in written] == ["ir", "average"]
    splits = {}
    for inp in ("ir", "average"):
        data = yaml.safe_load((tmp_path / "yolo" / inp / "data.yaml").read_text())
        assert data["names"] == {0: "person", 1: "bicycle", 2: "car"} and data["test"] == "images/test"
        splits[inp] = {
            part: sorted(p.stem for p in (tmp_path / "yolo" / inp / "images" / part).glob("*.png"))
            for part in ("train", "val", "test")
        }
        assert [len(v) for v in splits[inp].values()] == [8, 1, 1]
        for part, stems in splits[inp].items():
            assert stems == sorted(p.stem for p in (tmp_path / "yolo" / inp / "labels" / part).glob("*.txt"))
    assert splits["ir"] == splits["average"]  # the same split for every input


def test_export_yolo_leaves_out_a_pair_without_labels_and_says_so(tmp_path, capsys):
    root = write_labelled(tmp_path / "data", {"p0": "0 0.5 0.5 0.2 0.2\n", "p1": None, "p2": "2 0.5 0.5 0.2 0.2\n"})
    export_yolo_datasets([str(root)], "vi,max", tmp_path / "yolo", progress=False)
    for inp in ("vi", "max"):
        assert sorted(p.stem for p in (tmp_path / "yolo" / inp / "images").rglob("*.png")) == ["data_p0", "data_p2"]
    with open(tmp_path / "yolo" / "failures.csv", newline="") as f:
        failures = list(csv.DictReader(f))
    assert [r["image"] for r in failures] == ["p1"] and "no label file" in failures[0]["error"]
    assert "SKIPPED data p1" in capsys.readouterr().err
