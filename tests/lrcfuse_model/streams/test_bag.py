"""lrcfuse fuse-bag on real rosbag2 files (sqlite3 and MCAP) written and read back with rosbags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lrcfuse_model.inference.fuser import Fuser
from lrcfuse_model.streams.bag import fuse_bag
from lrcfuse_model.streams.image_msg import fill_image_msg

rosbags = pytest.importorskip("rosbags", reason="rosbags is needed to read and write bags")
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

TYPES = get_typestore(Stores.LATEST)
IMAGE = "sensor_msgs/msg/Image"
T0_NS = 1_700_000_000_000_000_000
H, W = 12, 16


def _image(stamp_ns: int, frame_id: str, array: np.ndarray, encoding: str):
    t = TYPES.types
    stamp = t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    msg = t[IMAGE](t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id), 0, 0, "", 0, 0, np.zeros(0, np.uint8))
    return fill_image_msg(msg, array, encoding)


def write_bag(
    path: Path, storage: StoragePlugin, n: int = 6, extras: bool = True, size: tuple[int, int] = (H, W)
) -> list[int]:
    """n thermal (mono16) + n rgb (bgr8) frames at 10 Hz with jittered stamps; returns the rgb stamps (ns).

    With ``extras``: rgb frame 2 has an unsupported encoding, one thermal frame has no rgb
    partner, and one message on the thermal topic is not valid CDR.
    """
    rng = np.random.default_rng(0)
    rgb_stamps = []
    with Writer(path, version=9, storage_plugin=storage) as writer:
        thermal = writer.add_connection("/thermal/image_raw", IMAGE, typestore=TYPES)
        rgb = writer.add_connection("/rgb/image_raw", IMAGE, typestore=TYPES)
        other = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=TYPES)
        hello = TYPES.types["std_msgs/msg/String"](data="hi")
        writer.write(other, T0_NS, TYPES.serialize_cdr(hello, "std_msgs/msg/String"))
        for i in range(n):
            base = T0_NS + i * 100_000_000
            t_stamp = base + int(rng.integers(-10_000_000, 10_000_000))
            r_stamp = base + int(rng.integers(-10_000_000, 10_000_000))
            ir = rng.integers(1000, 5000, size).astype(np.uint16)
            vi = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            t_msg = _image(t_stamp, "thermal_optical", ir, "mono16")
            r_msg = _image(r_stamp, "rgb_optical", vi, "bgr8")
            if extras and i == 2:
                r_msg.encoding = "nv21"  # not an encoding the node reads; step and data length stay consistent
            writer.write(thermal, base + 5_000_000, TYPES.serialize_cdr(t_msg, IMAGE))
            writer.write(rgb, base + 7_000_000, TYPES.serialize_cdr(r_msg, IMAGE))
            rgb_stamps.append(r_stamp)
        if extras:
            late = T0_NS + n * 100_000_000
            lone = _image(late, "thermal_optical", np.zeros((H, W), np.uint16), "mono16")
            writer.write(thermal, late, TYPES.serialize_cdr(lone, IMAGE))
            writer.write(thermal, late + 1, b"\x00\x01\x00\x00garbage")
    return rgb_stamps


def read_topic(path: Path, topic: str) -> list[tuple[int, object]]:
    with AnyReader([path]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages(connections=conns)]


@pytest.fixture
def fuser(tiny_model) -> Fuser:
    return Fuser(tiny_model, {})


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_fuse_bag_round_trip(tmp_path, fuser, storage):
    rgb_stamps = write_bag(tmp_path / "in", storage)
    seen = []
    report = fuse_bag(tmp_path / "in", tmp_path / "out", fuser, progress=lambda it: seen.append(len(it)) or it)
    assert seen == [6 + 6 + 2]  # the progress wrapper knows the total
    assert report["storage"] == ("sqlite3" if storage == StoragePlugin.SQLITE3 else "mcap")
    assert report["messages"] == {"thermal": 8, "rgb": 6, "copied": 0}
    assert report["pairs"] == 6 and report["fused"] == 5
    assert report["dropped_thermal"] == 1 and report["dropped_rgb"] == 0
    errors = [row["error"] for row in report["failed"]]
    assert len(errors) == 2
    assert any("/rgb/image_raw image: encoding 'nv21'" in e and "['bgr8', 'rgb8', 'mono8', " in e for e in errors)
    assert any("unreadable message" in e for e in errors)

    meta = (tmp_path / "out" / "metadata.yaml").read_text()
    assert f"storage_identifier: {report['storage']}" in meta
    fused = read_topic(tmp_path / "out", "/fused/image")
    expected = [s for i, s in enumerate(rgb_stamps) if i != 2]
    assert len(fused) == 5
    for (_, msg), stamp in zip(fused, expected):
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
        assert msg.header.frame_id == "rgb_optical"
        assert (msg.encoding, msg.height, msg.width, msg.step) == ("bgr8", H, W, 3 * W)
        assert msg.data.size == H * W * 3
    rgb_log_times = [t for t, m in read_topic(tmp_path / "in", "/rgb/image_raw")]
    assert [t for t, _ in fused] == [t for i, t in enumerate(rgb_log_times) if i != 2]


def test_fused_pixels_equal_fusing_the_arrays(tmp_path, fuser):
    write_bag(tmp_path / "in", StoragePlugin.MCAP, n=2, extras=False)
    fuse_bag(tmp_path / "in", tmp_path / "out", fuser, thermal_topic="thermal/image_raw", rgb_topic="/rgb/image_raw")
    thermal = read_topic(tmp_path / "in", "/thermal/image_raw")[0][1]
    rgb = read_topic(tmp_path / "in", "/rgb/image_raw")[0][1]
    expected = fuser(thermal.data.view("<u2").reshape(H, W), rgb.data.reshape(H, W, 3)[:, :, ::-1])
    out = read_topic(tmp_path / "out", "/fused/image")[0][1]
    np.testing.assert_array_equal(out.data.reshape(H, W, 3)[:, :, ::-1], expected)


def test_gray_visible_gives_mono8_and_size_mismatch_is_recorded(tmp_path, fuser):
    with Writer(tmp_path / "in", version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        thermal = writer.add_connection("/thermal/image_raw", IMAGE, typestore=TYPES)
        rgb = writer.add_connection("/rgb/image_raw", IMAGE, typestore=TYPES)
        for i, ir_shape in enumerate([(H, W), (H + 2, W)]):
            stamp = T0_NS + i * 10**8
            ir = _image(stamp, "t", np.ones(ir_shape, np.uint8), "mono8")
            vi = _image(stamp, "c", np.ones((H, W), np.uint8), "mono8")
            writer.write(thermal, stamp, TYPES.serialize_cdr(ir, IMAGE))
            writer.write(rgb, stamp, TYPES.serialize_cdr(vi, IMAGE))
    report = fuse_bag(tmp_path / "in", tmp_path / "out", fuser)
    assert report["fused"] == 1 and len(report["failed"]) == 1
    assert "is 16x14 but /rgb/image_raw is 16x12" in report["failed"][0]["error"]
    assert read_topic(tmp_path / "out", "/fused/image")[0][1].encoding == "mono8"


def test_copy_inputs_keeps_every_input_message(tmp_path, fuser):
    write_bag(tmp_path / "in", StoragePlugin.SQLITE3, n=2, extras=False)
    report = fuse_bag(tmp_path / "in", tmp_path / "out", fuser, copy_inputs=True)
    assert report["messages"]["copied"] == 5
    with AnyReader([tmp_path / "out"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts == {"/thermal/image_raw": 2, "/rgb/image_raw": 2, "/chatter": 1, "/fused/image": 2}
    assert read_topic(tmp_path / "out", "/chatter")[0][1].data == "hi"


def test_bad_arguments_are_clear(tmp_path, fuser):
    write_bag(tmp_path / "in", StoragePlugin.MCAP, n=1, extras=False)
    with pytest.raises(ValueError, match=r"thermal topic /ir is not in the bag; its topics are \['/chatter'"):
        fuse_bag(tmp_path / "in", tmp_path / "out", fuser, thermal_topic="ir")
    with pytest.raises(
        ValueError, match=r"rgb topic /chatter carries \['std_msgs/msg/String'\]; expected .*Compressed"
    ):
        fuse_bag(tmp_path / "in", tmp_path / "out", fuser, rgb_topic="chatter")
    (tmp_path / "exists").mkdir()
    with pytest.raises(ValueError, match="exists already"):
        fuse_bag(tmp_path / "in", tmp_path / "exists", fuser)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fuse_bag(tmp_path / "nothing", tmp_path / "out", fuser)


def test_cli_fuse_bag(tmp_path, tiny_weights, capsys):
    from lrcfuse_model.cli import main

    write_bag(tmp_path / "in", StoragePlugin.MCAP, n=3)
    report_path = tmp_path / "report.json"
    args = ["fuse-bag", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    args += ["--backend", "torch", "--weights", str(tiny_weights), "--report", str(report_path), "--slop", "0.03"]
    args += ["--min-interval", "0.05"]  # reaches the pairing: 10 Hz frames jittered by 10 ms keep it, same pairs
    assert main(args) == 1  # one pair failed (bad encoding): reported, the rest fused
    out, err = capsys.readouterr()
    assert "paired 3, fused 2" in out and "encoding 'nv21'" in err
    report = json.loads(report_path.read_text())
    assert report["fused"] == 2 and report["n_failed"] == 2
    assert len(read_topic(tmp_path / "out", "/fused/image")) == 2


def test_cli_fuse_bag_tiled_gives_the_whole_frame_result(tmp_path, tiny_weights):
    from lrcfuse_model.cli import main

    write_bag(tmp_path / "in", StoragePlugin.MCAP, n=2, extras=False, size=(40, 56))
    common = ["fuse-bag", "--input", str(tmp_path / "in"), "--backend", "torch", "--weights", str(tiny_weights)]
    assert main([*common, "--output", str(tmp_path / "whole"), "--tile", "off"]) == 0
    assert main([*common, "--output", str(tmp_path / "tiled"), "--tile", "16", "--threads", "1"]) == 0
    whole = read_topic(tmp_path / "whole", "/fused/image")
    tiled = read_topic(tmp_path / "tiled", "/fused/image")
    assert len(whole) == len(tiled) == 2
    for (_, a), (_, b) in zip(whole, tiled):
        assert (a.height, a.width, a.encoding) == (b.height, b.width, b.encoding)
        np.testing.assert_allclose(a.data.astype(int), b.data.astype(int), atol=1)  # 8-bit rounding of a 1e-6 change


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_compressed_topics_are_fused_like_raw_ones(tmp_path, fuser, storage):
    """image_transport's ``<topic>/compressed`` (PNG 16-bit thermal, JPEG colour) next to raw topics."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV decodes compressed images")
    from lrcfuse_model.streams.compressed_msg import fill_compressed_msg

    compressed = "sensor_msgs/msg/CompressedImage"
    t = TYPES.types
    rng = np.random.default_rng(3)
    arrays = []
    with Writer(tmp_path / "in", version=9, storage_plugin=storage) as writer:
        thermal = writer.add_connection("/thermal/image_raw/compressed", compressed, typestore=TYPES)
        rgb = writer.add_connection("/rgb/image_raw/compressed", compressed, typestore=TYPES)
        for i in range(3):
            stamp_ns = T0_NS + i * 10**8
            stamp = t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
            ir = rng.integers(1000, 5000, (H, W)).astype(np.uint16)
            vi = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            arrays.append((ir, vi))
            ok, png = cv2.imencode(".png", ir)
            header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="thermal")
            t_msg = t[compressed](header, "mono16; png compressed", np.frombuffer(png.tobytes(), np.uint8))
            r_msg = fill_compressed_msg(
                t[compressed](t["std_msgs/msg/Header"](stamp=stamp, frame_id="rgb"), "", np.zeros(0, np.uint8)),
                vi,
                "png",
            )
            writer.write(thermal, stamp_ns, TYPES.serialize_cdr(t_msg, compressed))
            writer.write(rgb, stamp_ns, TYPES.serialize_cdr(r_msg, compressed))
    report = fuse_bag(
        tmp_path / "in",
        tmp_path / "out",
        fuser,
        thermal_topic="thermal/image_raw/compressed",
        rgb_topic="/rgb/image_raw/compressed",
    )
    assert report["failed"] == [] and report["fused"] == 3
    fused = read_topic(tmp_path / "out", "/fused/image")
    for (_, msg), (ir, vi) in zip(fused, arrays):
        assert (msg.encoding, msg.header.frame_id) == ("bgr8", "rgb")
        np.testing.assert_array_equal(msg.data.reshape(H, W, 3)[:, :, ::-1], fuser(ir, vi))


def test_ros1_bag_gives_an_mcap_rosbag2(tmp_path, fuser):
    from rosbags.rosbag1 import Writer as Ros1Writer

    ros1 = get_typestore(Stores.ROS1_NOETIC)
    t = ros1.types
    with Ros1Writer(tmp_path / "in.bag") as writer:
        conns = {n: writer.add_connection(f"/{n}/image_raw", IMAGE, typestore=ros1) for n in ("thermal", "rgb")}
        for i in range(2):
            stamp = t["builtin_interfaces/msg/Time"](sec=100 + i, nanosec=7)
            for name, encoding, step in (("thermal", "mono16", 2 * W), ("rgb", "rgb8", 3 * W)):
                header = t["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id=name)
                msg = t[IMAGE](header, H, W, encoding, 0, step, np.full(H * step, 40 * i + 3, np.uint8))
                writer.write(conns[name], (100 + i) * 10**9 + 7, ros1.serialize_ros1(msg, IMAGE))
    report = fuse_bag(tmp_path / "in.bag", tmp_path / "out", fuser)
    assert report["storage"] == "mcap" and report["fused"] == 2 and not report["failed"]
    fused = read_topic(tmp_path / "out", "/fused/image")
    assert [(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) for _, m in fused] == [
        (100, 7, "rgb"),
        (101, 7, "rgb"),
    ]
    # R = G = B visible fuses to gray, published as the colour stream it is: bgr8, three equal channels
    assert [m.encoding for _, m in fused] == ["bgr8", "bgr8"]
    pixels = fused[0][1].data.reshape(H, W, 3)
    assert (pixels == pixels[:, :, :1]).all()


@pytest.mark.parametrize("storage, suffix", [(StoragePlugin.MCAP, "mcap"), (StoragePlugin.SQLITE3, "db3")])
def test_a_single_storage_file_is_an_input_too(tmp_path, fuser, storage, suffix):
    write_bag(tmp_path / "in", storage, n=2, extras=False)
    report = fuse_bag(tmp_path / "in" / f"in.{suffix}", tmp_path / "out", fuser)
    assert report["fused"] == 2 and report["storage"] == ("mcap" if suffix == "mcap" else "sqlite3")
    assert len(read_topic(tmp_path / "out", "/fused/image")) == 2
