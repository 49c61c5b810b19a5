"""Hostile inputs, in one place (issue 14): each case asserts the one-line message, the exit status, and that no
input file changed.

Exit statuses (lrcfuse_model/cli_checks.py): 2 a usage error found before anything is written, 1 a failed run,
130 a run stopped by Ctrl-C (after saving). The CLI runs in-process (``main(argv)``) so the module stays fast;
only the read-only file system needs a process of its own (a mount namespace).

Malformed ROS messages are tested where their code lives; :data:`ELSEWHERE` lists those tests and
:func:`test_the_cases_tested_elsewhere_still_exist` keeps the list from going stale.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrcfuse_model.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_TRAIN_CONFIG = """
model: {code_channels: 4, feature_channels: 4, decoder_channels: [4, 4], llrr_blocks: 2, cfpm_stages: 2}
loss: {feature_net: none}
train: {patch_size: 32, batch_size: 2, log_every: 1, save_every: 1000, threads: 1}
"""

# Malformed ROS messages, tested with their own code: test file -> test names.
ELSEWHERE = {
    # wrong / unsupported encodings, step smaller than a row, data shorter than step x height, empty image
    "tests/lrcfuse_model/streams/test_image_msg.py": [
        "test_bad_messages_rejected_clearly",
        "test_bad_arrays_rejected_clearly",
    ],
    # compressed images: unknown format, undecodable bytes, wrong bit depth
    "tests/lrcfuse_model/streams/test_compressed_msg.py": ["test_bad_compressed_messages_rejected_clearly"],
    # the live node: a thermal frame in a colour encoding, frames of different sizes -> logged, node keeps fusing
    "tests/lrcfuse_ros/test_fusion_node.py": ["test_node_fuses_pairs_and_survives_bad_frames"],
    # a bag message that is not valid CDR and an unsupported encoding: recorded, the rest of the bag is fused
    "tests/lrcfuse_model/streams/test_bag.py": ["test_fuse_bag_round_trip", "test_cli_fuse_bag"],
}


def test_the_cases_tested_elsewhere_still_exist():
    for path, names in ELSEWHERE.items():
        tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert set(names) <= defined, (path, set(names) - defined)


# -- helpers --------------------------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` -> sha256 of its bytes (a folder's new files show up too)."""
    files = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def cli(capsys, *argv: str) -> tuple[int, str]:
    """``lrcfuse ARGV`` in this process -> (exit status, stderr); argparse's own exits count as statuses."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def fuse(capsys, ir, vi, out, *extra) -> tuple[int, str]:
    """``lrcfuse fuse --ir IR --vi VI --out OUT EXTRA...`` through :func:`cli`: the command most cases here run."""
    return cli(capsys, "fuse", "--ir", ir, "--vi", vi, "--out", out, *extra)


def error_line(err: str) -> str:
    """The one error line (argparse prints its usage first; a batch prints its failures after)."""
    lines = [line for line in err.splitlines() if "error" in line]
    assert lines, err
    return lines[0]


@pytest.fixture
def pair_dirs(tiny_dataset: Path) -> Path:
    """``data/{ir,vi}``: three 40 x 48 gray pairs (vi as .jpg, like the issue's p2.jpg)."""
    for png in sorted((tiny_dataset / "vi").glob("*.png")):
        Image.open(png).convert("RGB").save(png.with_suffix(".jpg"))
        png.unlink()
    return tiny_dataset


@pytest.fixture
def fuse_args(tiny_weights: Path) -> list[str]:
    return ["--weights", str(tiny_weights), "--backend", "torch", "--threads", "1"]


# -- 1. outputs that would overwrite inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    "out, message",
    [
        ("data/vi", r"--out \(fuse.out\) .*data/vi is the input --vi \(fuse.vi\)"),
        ("data/ir", r"is the input --ir \(fuse.ir\)"),
        ("data/vi/fused", r"data/vi/fused is inside the input --vi"),
    ],
)
def test_output_folder_that_is_or_is_inside_an_input_is_refused(capsys, tmp_path, pair_dirs, fuse_args, out, message):
    before = snapshot(pair_dirs)
    code, err = fuse(capsys, pair_dirs / "ir", pair_dirs / "vi", tmp_path / out, *fuse_args)
    assert code == 2
    assert error_line(err).startswith("lrcfuse fuse: error: --out") and re_search(message, err)
    assert snapshot(pair_dirs) == before  # nothing written, nothing replaced


def test_output_file_that_is_an_input_file_is_refused(capsys, pair_dirs, fuse_args):
    ir, vi = pair_dirs / "ir" / "p0.png", pair_dirs / "vi" / "p0.jpg"
    before = snapshot(pair_dirs)
    for target in (vi, ir):
        code, err = fuse(capsys, ir, vi, target, *fuse_args)
        assert code == 2 and f"--out (fuse.out) {target} is the input" in err
    assert snapshot(pair_dirs) == before


def test_export_over_its_own_weights_is_refused(capsys, tiny_weights):
    before = snapshot(tiny_weights)
    code, err = cli(capsys, "export", "--model", tiny_weights, "--out", tiny_weights, "--check-data", "")
    assert code == 2 and "--out (export.out)" in err and "is the input --model (export.model)" in err
    assert snapshot(tiny_weights) == before


# -- 5. outputs that cannot be written -----------------------------------------------------------------------


def test_output_folder_that_is_an_existing_file(capsys, tmp_path, pair_dirs, fuse_args):
    (tmp_path / "a_file").write_text("keep me")
    before = snapshot(pair_dirs, tmp_path / "a_file")
    code, err = fuse(capsys, pair_dirs / "ir", pair_dirs / "vi", tmp_path / "a_file", *fuse_args)
    assert code == 2 and "a_file is an existing file; expected a folder" in err
    assert snapshot(pair_dirs, tmp_path / "a_file") == before


def test_export_into_a_file_as_if_it_were_a_folder(capsys, tmp_path):
    (tmp_path / "some_file").write_text("keep me")
    code, err = cli(capsys, "export", "--model", "rt", "--out", tmp_path / "some_file" / "x.onnx", "--check-data", "")
    assert code == 2
    assert error_line(err) == (
        f"lrcfuse export: error: --out (export.out) {tmp_path / 'some_file' / 'x.onnx'}: "
        f"{tmp_path / 'some_file'} is a file, so no folder or file can be made inside it"
    )
    assert (tmp_path / "some_file").read_text() == "keep me"


def test_single_pair_output_without_an_image_suffix(capsys, tmp_path, pair_dirs, fuse_args):
    ir, vi = pair_dirs / "ir" / "p0.png", pair_dirs / "vi" / "p0.jpg"
    before = snapshot(pair_dirs)
    code, err = fuse(capsys, ir, vi, tmp_path / "fused.xyz", *fuse_args)
    assert code == 2 and "expected a name ending in an image format" in err
    assert not (tmp_path / "fused.xyz").exists() and snapshot(pair_dirs) == before


def test_report_that_cannot_be_written_prints_the_failed_pairs(capsys, tmp_path, pair_dirs, fuse_args):
    (pair_dirs / "ir" / "p1.png").write_bytes(b"not a png")  # one pair fails
    (tmp_path / "out" / "report.json").mkdir(parents=True)  # report.json cannot be written there
    before = snapshot(pair_dirs)
    code, err = fuse(capsys, pair_dirs / "ir", pair_dirs / "vi", tmp_path / "out", *fuse_args)
    assert code == 1
    assert f"error: {tmp_path / 'out' / 'report.json'} could not be written" in err
    assert "1 pairs FAILED (listed below):" in err and "p1:" in err and "not a readable image" in err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["p0.png", "p2.png"]
    assert snapshot(pair_dirs) == before


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root and unshare for a private read-only mount",
)
def test_output_on_a_read_only_file_system(tmp_path, pair_dirs, tiny_weights):
    ro = tmp_path / "ro"
    ro.mkdir()
    script = 'mount -t tmpfs -o ro,size=64k tmpfs "$1" || exit 99; shift; exec "$@"'
    argv = [
        sys.executable,
        "-m",
        "lrcfuse_model.cli",
        "fuse",
        "--ir",
        str(pair_dirs / "ir"),
        "--vi",
        str(pair_dirs / "vi"),
    ]
    argv += ["--out", str(ro / "out"), "--weights", str(tiny_weights), "--backend", "torch"]
    env = {**os.environ, "LRCFUSE_NO_MALLOC_TUNING": "1"}
    before = snapshot(pair_dirs)
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(ro), *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if run.returncode == 99:
        pytest.skip(f"cannot mount a read-only tmpfs here: {run.stderr.strip()}")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert (
        run.stderr.strip()
        == f"lrcfuse fuse: error: --out (fuse.out) {ro / 'out'}: cannot write in {ro} (a read-only file system)"
    )
    assert snapshot(pair_dirs) == before


# -- 5. options and config files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (
            ["--threads", "-3"],
            2,
            "error: --threads (fuse.threads): expected 0 (all cores) or a number of threads >= 1, got -3",
        ),
        (["--device", "tpu"], 2, "error: --device (fuse.device): expected cpu, cuda or cuda:N, got 'tpu'"),
        (["--size-mismatch", "bogus"], 2, "argument --size-mismatch: invalid choice: 'bogus' (choose from"),
        (["--thermal-norm", "log"], 2, "argument --thermal-norm: invalid choice: 'log'"),
        # 4. thermal settings that would flatten the image or crash
        (
            ["--thermal-norm", "fixed", "--thermal-range", "100", "50"],
            2,
            "data.thermal_range: expected LOW < HIGH (e.g. 290 310), got [100.0, 50.0]",
        ),
        (
            ["--thermal-percentiles", "99", "1"],
            2,
            "data.thermal_percentiles: expected 0 <= LOW < HIGH <= 100 (e.g. 1 99), got [99.0, 1.0]",
        ),
        (
            ["--thermal-norm", "fixed", "--thermal-range", "5"],
            2,
            "data.thermal_range: expected two numbers LOW HIGH (e.g. 290 310), got [5.0]",
        ),
        # a large translation is not "singular": it moves the thermal image out of the frame (each pair says so)
        (
            ["--homography", "1", "0", "1e9", "0", "1", "0", "0", "0", "1"],
            1,
            "the homography maps the 48x40 thermal image entirely outside the 48x40 frame",
        ),
    ],
)
def test_bad_options(capsys, tmp_path, pair_dirs, fuse_args, extra, code, message):
    before = snapshot(pair_dirs)
    status, err = fuse(capsys, pair_dirs / "ir", pair_dirs / "vi", tmp_path / "out", *fuse_args, *extra)
    assert status == code and message in err and "singular" not in err
    if code == 2:
        assert not (tmp_path / "out").exists()  # refused before anything is written
    assert snapshot(pair_dirs) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message where CUDA is missing")
@pytest.mark.parametrize("command", ["fuse", "train"])
def test_cuda_without_cuda(capsys, tmp_path, pair_dirs, fuse_args, command):
    args = (
        ["--ir", pair_dirs / "ir", "--vi", pair_dirs / "vi", *fuse_args] if command == "fuse" else ["--data", pair_dirs]
    )
    before = snapshot(pair_dirs)
    code, err = cli(capsys, command, *args, "--out", tmp_path / "out", "--device", "cuda")
    assert code == 2
    assert error_line(err).startswith(
        f"lrcfuse {command}: error: --device ({command}.device) cuda: CUDA is not available here"
    )
    assert not (tmp_path / "out").exists() and snapshot(pair_dirs) == before


@pytest.mark.parametrize(
    "content, message",
    [
        (b"fuse: [unclosed\n  - x: :", "is not valid YAML at line 2, column 6: expected ',' or ']', but got ':'"),
        (b"\xff\xfe\x00 binary", "is not a UTF-8 text file"),
        (b"- a\n- b\n", "expected a mapping of sections, got list"),
        (b"fuse: {outt: x}\n", "unknown config key 'fuse.outt'. Did you mean 'fuse.out'?"),
    ],
)
def test_malformed_config_file(capsys, tmp_path, pair_dirs, fuse_args, content, message):
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    before = snapshot(pair_dirs, config)
    code, err = fuse(capsys, pair_dirs / "ir", pair_dirs / "vi", tmp_path / "out", *fuse_args, "--config", config)
    assert code == 2 and message in error_line(err)
    assert snapshot(pair_dirs, config) == before


# -- 4. float thermal ---------------------------------------------------------------------------------------


def kelvin_frame(h: int = 40, w: int = 48) -> np.ndarray:
    """A radiometric frame in Kelvin: a 290..300 K background with a 309 K target."""
    rng = np.random.default_rng(5)
    frame = (290.0 + 10.0 * rng.random((h, w))).astype(np.float32)
    frame[10:20, 12:24] = 309.0
    return frame


def test_kelvin_tiff_fuses_with_its_thermal_content(capsys, tmp_path):
    Image.fromarray(kelvin_frame(), mode="F").save(tmp_path / "k.tif")
    vi = tmp_path / "vi.png"
    Image.fromarray(np.full((40, 48), 100, np.uint8)).save(vi)  # a flat visible image: what shows is the thermal
    before = snapshot(tmp_path / "k.tif", vi)
    args = [
        "--ir",
        tmp_path / "k.tif",
        "--vi",
        vi,
        "--out",
        tmp_path / "fused.png",
        "--model",
        "rt",
        "--backend",
        "torch",
    ]
    code, _ = cli(capsys, "fuse", *args)  # the shipped LRCFuse-RT: a trained model, milliseconds per frame
    assert code == 0 and snapshot(tmp_path / "k.tif", vi) == before
    fused = np.asarray(Image.open(tmp_path / "fused.png").convert("L"), np.float64)
    # before: the float frame was clipped to [0, 1], every thermal pixel 255, the target gone
    assert fused[10:20, 12:24].mean() > fused[25:, :].mean() + 20  # the 309 K target stands out of the 290-300 K
    assert np.corrcoef(fused.ravel(), kelvin_frame().ravel())[0, 1] > 0.5


def test_nan_in_a_float_thermal_image_is_an_error(capsys, tmp_path, pair_dirs, fuse_args):
    frame = kelvin_frame()
    frame[0, :3] = np.nan
    frame[1, 0] = np.inf
    Image.fromarray(frame, mode="F").save(tmp_path / "nan.tif")
    before = snapshot(tmp_path / "nan.tif")
    code, err = fuse(capsys, tmp_path / "nan.tif", pair_dirs / "vi" / "p0.jpg", tmp_path / "f.png", *fuse_args)
    assert code == 1 and not (tmp_path / "f.png").exists()
    assert f"{tmp_path / 'nan.tif'}: contains NaN or infinite values (3 NaN, 1 inf of 1920 pixels)" in err
    assert snapshot(tmp_path / "nan.tif") == before


def test_float_thermal_ros_messages_are_normalised_and_nan_refused():
    """32FC1 / 64FC1 thermal messages (decoded to float32 values as sent) go through the same normalisation."""
    from rosbags.typesys import Stores, get_typestore

    from lrcfuse_model.images.preprocess import InputError, prepare_pair
    from lrcfuse_model.streams.image_msg import THERMAL_ENCODINGS, image_msg_to_array

    types = get_typestore(Stores.LATEST).types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="ir")
    vi = np.full((40, 48), 100, np.uint8)
    for encoding, dtype in (("32FC1", "<f4"), ("64FC1", "<f8")):
        frame = kelvin_frame().astype(dtype)
        msg = types["sensor_msgs/msg/Image"](
            header, 40, 48, encoding, 0, 48 * frame.itemsize, np.frombuffer(frame.tobytes(), np.uint8)
        )
        pair = prepare_pair(image_msg_to_array(msg, THERMAL_ENCODINGS, "/ir"), vi, {}, ("/ir", "/rgb"))
        assert pair.ir[10:20, 12:24].min() == 1.0 and 0.0 < pair.ir.mean() < 0.8  # not all 1.0
        frame[3, 3] = np.nan
        msg.data = np.frombuffer(frame.tobytes(), np.uint8)
        with pytest.raises(InputError, match=r"/ir: contains NaN or infinite values \(1 NaN"):
            prepare_pair(image_msg_to_array(msg, THERMAL_ENCODINGS, "/ir"), vi, {}, ("/ir", "/rgb"))


# -- 5. bags that are not bags ------------------------------------------------------------------------------


def write_small_bag(folder: Path, storage: str) -> Path:
    """A rosbag2 (sqlite3 or mcap) with 8 mono16 thermal + 8 bgr8 rgb frames at 10 Hz; returns its storage file."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from lrcfuse_model.streams.image_msg import fill_image_msg

    types = get_typestore(Stores.LATEST)
    t = types.types
    rng = np.random.default_rng(1)
    plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
    with Writer(folder, version=9, storage_plugin=plugin) as writer:
        conns = {
            name: writer.add_connection(f"/{name}/image_raw", "sensor_msgs/msg/Image", typestore=types)
            for name in ("thermal", "rgb")
        }
        for i in range(8):
            ns = 1_700_000_000_000_000_000 + i * 100_000_000
            for name, array, enc in (("thermal", rng.integers(900, 5000, (24, 32)).astype(np.uint16), "mono16"),
                                     ("rgb", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "bgr8")):  # fmt: skip
                stamp = t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
                msg = t["sensor_msgs/msg/Image"](
                    t["std_msgs/msg/Header"](stamp=stamp, frame_id=name), 0, 0, "", 0, 0, np.zeros(0, np.uint8)
                )
                writer.write(
                    conns[name], ns, types.serialize_cdr(fill_image_msg(msg, array, enc), "sensor_msgs/msg/Image")
                )
    return next(folder.glob("*.db3" if storage == "sqlite3" else "*.mcap"))


def write_small_ros1_bag(path: Path) -> Path:
    """A ROS 1 .bag with 4 mono16 thermal + 4 rgb8 frames."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS1_NOETIC)
    t = types.types
    with Writer(path) as writer:
        conns = {
            n: writer.add_connection(f"/{n}/image_raw", "sensor_msgs/msg/Image", typestore=types)
            for n in ("thermal", "rgb")
        }
        for i in range(4):
            stamp = t["builtin_interfaces/msg/Time"](sec=100 + i, nanosec=0)
            for name, encoding, step in (("thermal", "mono16", 64), ("rgb", "rgb8", 96)):
                header = t["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id=name)
                msg = t["sensor_msgs/msg/Image"](header, 24, 32, encoding, 0, step, np.full(24 * step, 9 * i, np.uint8))
                writer.write(conns[name], (100 + i) * 10**9, types.serialize_ros1(msg, "sensor_msgs/msg/Image"))
    return path


def bag_cases(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(2)
    cases = {}
    for suffix in (".mcap", ".db3", ".bag"):
        (tmp_path / f"empty{suffix}").write_bytes(b"")
        (tmp_path / f"random{suffix}").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        cases[f"empty{suffix}"], cases[f"random{suffix}"] = tmp_path / f"empty{suffix}", tmp_path / f"random{suffix}"
    for storage, suffix in (("mcap", ".mcap"), ("sqlite3", ".db3")):
        data = write_small_bag(tmp_path / f"good_{storage}", storage).read_bytes()
        (tmp_path / f"truncated{suffix}").write_bytes(data[: len(data) // 2])
        cases[f"truncated{suffix}"] = tmp_path / f"truncated{suffix}"
    data = write_small_ros1_bag(tmp_path / "good.bag").read_bytes()
    (tmp_path / "truncated.bag").write_bytes(data[: len(data) // 2])
    cases["truncated.bag"] = tmp_path / "truncated.bag"
    return cases


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("rosbags", reason="rosbags reads and writes the bags")
    return bag_cases(tmp_path_factory.mktemp("bags"))


KINDS = {".mcap": "rosbag2 MCAP", ".db3": "rosbag2 sqlite3 (.db3)", ".bag": "ROS 1"}


@pytest.mark.parametrize(
    "name",
    [
        "empty.mcap",
        "random.mcap",
        "truncated.mcap",
        "empty.db3",
        "random.db3",
        "truncated.db3",
        "empty.bag",
        "random.bag",
        "truncated.bag",
    ],
)
def test_unreadable_bags(capsys, tmp_path, bags, tiny_weights, name):
    before = snapshot(bags[name])
    argv = [
        "fuse-bag",
        "--input",
        bags[name],
        "--output",
        tmp_path / "out",
        "--weights",
        tiny_weights,
        "--backend",
        "torch",
    ]
    code, err = cli(capsys, *argv)
    assert code == 2 and not (tmp_path / "out").exists()
    kind = KINDS[Path(name).suffix]
    assert error_line(err).startswith(
        f"lrcfuse fuse-bag: error: {bags[name]}: not a readable {kind} bag: empty, truncated or not a bag ("
    )
    assert snapshot(bags[name]) == before


def test_a_bag_damaged_part_way_keeps_what_was_fused(capsys, tmp_path, tiny_weights):
    pytest.importorskip("rosbags", reason="rosbags reads and writes the bags")
    source = write_small_bag(tmp_path / "good", "sqlite3")
    data = bytearray(source.read_bytes())
    damaged = tmp_path / "damaged.db3"
    # The last 4096-byte page loses its tail: sqlite opens the file (schema intact), the first messages read,
    # and the ones on that page are damaged.
    damaged.write_bytes(bytes(data[: len(data) - 3000]))
    before = snapshot(damaged)
    argv = [
        "fuse-bag",
        "--input",
        damaged,
        "--output",
        tmp_path / "out",
        "--weights",
        tiny_weights,
        "--backend",
        "torch",
    ]
    argv += ["--thermal-topic", "/thermal/image_raw", "--rgb-topic", "/rgb/image_raw"]
    code, err = cli(capsys, *argv)
    assert code == 1
    assert re_search(
        rf"{damaged}: reading stopped after \d+ messages: not a readable rosbag2 sqlite3 \(\.db3\) bag", err
    )
    from rosbags.highlevel import AnyReader

    with AnyReader([tmp_path / "out"]) as reader:  # the pairs fused before the damage are kept
        fused = [c for c in reader.connections if c.topic == "/fused/image"]
        assert sum(c.msgcount for c in fused) >= 1
    assert snapshot(damaged) == before


def test_bag_report_that_cannot_be_written_prints_every_failure(capsys, tmp_path, tiny_weights):
    """Past the up-front checks (cmd_fuse_bag called directly): the report path turns out unwritable at the end."""
    pytest.importorskip("rosbags", reason="rosbags reads and writes the bags")
    from lrcfuse_model.config import resolve
    from lrcfuse_model.streams.bag import cmd_fuse_bag

    data = write_small_bag(tmp_path / "good", "sqlite3").read_bytes()
    (tmp_path / "damaged.db3").write_bytes(data[: len(data) - 3000])  # one failure: where reading stopped
    (tmp_path / "report.json").mkdir()
    bag = {
        "input": str(tmp_path / "damaged.db3"),
        "output": str(tmp_path / "out"),
        "report": str(tmp_path / "report.json"),
    }
    bag.update(
        weights=str(tiny_weights), backend="torch", thermal_topic="/thermal/image_raw", rgb_topic="/rgb/image_raw"
    )
    assert cmd_fuse_bag(resolve(overrides={"bag": bag})) == 1
    err = capsys.readouterr().err
    assert f"error: the report {tmp_path / 'report.json'} could not be written" in err
    assert "1 FAILED:" in err and "reading stopped after" in err


def test_bag_output_inside_the_input_bag_folder_is_refused(capsys, tmp_path, tiny_weights):
    pytest.importorskip("rosbags", reason="rosbags reads and writes the bags")
    write_small_bag(tmp_path / "bag", "mcap")
    before = snapshot(tmp_path / "bag")
    code, err = cli(
        capsys,
        "fuse-bag",
        "--input",
        tmp_path / "bag",
        "--output",
        tmp_path / "bag" / "fused",
        "--weights",
        tiny_weights,
    )
    assert code == 2 and "is inside the input --input (bag.input)" in err
    assert snapshot(tmp_path / "bag") == before


# -- 2. checkpoints that would run code, and 5. Ctrl-C during training ---------------------------------------


class _Payload:
    """Unpickling this runs ``exec`` of a line that writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture
def train_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_train.yaml"
    path.write_text(TINY_TRAIN_CONFIG)
    return path


@pytest.mark.parametrize("kind", ["payload", "junk", "foreign"])
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(capsys, tmp_path, pair_dirs, train_config, kind):
    marker, checkpoint = tmp_path / "marker", tmp_path / "evil.pt"
    if kind == "payload":
        torch.save({"format": "lrcfuse-checkpoint-v1", "step": 1, "rng": _Payload(marker)}, checkpoint)
        assert "builtins.exec" in torch.serialization.get_unsafe_globals_in_checkpoint(
            checkpoint
        )  # the payload is there
    elif kind == "junk":
        checkpoint.write_bytes(np.random.default_rng(0).integers(0, 256, 999, dtype=np.uint8).tobytes())
    else:
        torch.save({"format": "someone-else", "weights": torch.zeros(3)}, checkpoint)
    before = snapshot(checkpoint, pair_dirs)
    code, err = cli(
        capsys,
        "train",
        "--config",
        train_config,
        "--data",
        pair_dirs,
        "--out",
        tmp_path / "run",
        "--resume",
        checkpoint,
        "--steps",
        "2",
    )
    assert code == 2
    expected = {
        "payload": f"{checkpoint}: refused: not a checkpoint of tensors and plain data (it needs builtins.exec); "
        "loading it would run code of the file's choosing",
        "junk": f"{checkpoint}: not a readable training checkpoint (",
        "foreign": f"{checkpoint} is not an lrcfuse training checkpoint (format 'someone-else'",
    }[kind]
    assert error_line(err).startswith(f"lrcfuse train: error: {expected}")
    assert not marker.exists()
    assert snapshot(checkpoint, pair_dirs) == before


def test_ctrl_c_during_training_saves_and_exits_130(capsys, tmp_path, pair_dirs, train_config):
    out = tmp_path / "run"

    def interrupt_after_the_first_logged_step() -> None:
        deadline = time.monotonic() + 300  # a safety net against a hang, not a timing assertion
        while time.monotonic() < deadline:
            csv = out / "loss.csv"
            if csv.is_file() and len(csv.read_text().splitlines()) >= 2:  # a header and step 1: the handler is set
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    before = snapshot(pair_dirs)
    previous = signal.getsignal(signal.SIGINT)
    threading.Thread(target=interrupt_after_the_first_logged_step, daemon=True).start()
    code, _ = cli(capsys, "train", "--config", train_config, "--data", pair_dirs, "--out", out, "--steps", "100000")
    assert code == 130
    assert signal.getsignal(signal.SIGINT) is previous  # the caller's handler is back
    saved = torch.load(out / "last.pt", weights_only=True)
    assert saved["step"] >= 1 and (out / "weights.pt").is_file()
    assert snapshot(pair_dirs) == before


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None
