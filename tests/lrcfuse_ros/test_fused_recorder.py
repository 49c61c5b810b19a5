"""The recorder's summary of what arrived (counts, sizes, stamps, latency), on real sensor_msgs/Image."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sensor_msgs", reason='ROS message wheels not installed (pip install "lrcfuse_ros[ros]")')

from sensor_msgs.msg import Image  # noqa: E402

from lrcfuse_model.streams.image_msg import fill_image_msg  # noqa: E402
from lrcfuse_ros.fused_recorder import FusedLog  # noqa: E402


def test_summary_and_png_files(tmp_path) -> None:
    log = FusedLog(tmp_path)
    for k in range(3):
        msg = fill_image_msg(Image(), np.full((6, 8, 3), 40 * k, np.uint8), "bgr8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + k, 5
        msg.header.frame_id = "rgb_camera"
        log.add(msg, now_ros=100 + k + 0.25)
    bad = Image(height=2, width=2, encoding="bgr8", step=6, data=bytes(5))  # corrupt: recorded, not fatal
    log.add(bad, now_ros=0.0)
    s = log.summary()
    assert s["count"] == 4 and s["sizes"] == ["2x2", "8x6"] and s["encodings"] == ["bgr8"]
    assert s["stamps"][:3] == pytest.approx([100.000000005, 101.000000005, 102.000000005])
    assert len(s["errors"]) == 1 and "data has 5 bytes" in s["errors"][0]
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert files == ["100_000000005.png", "101_000000005.png", "102_000000005.png"]


def test_png_writer_thread_writes_the_frames_and_records_failures(tmp_path) -> None:
    from PIL import Image as PILImage

    log = FusedLog(tmp_path / "out")
    (tmp_path / "out").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    msg = fill_image_msg(Image(), rgb, "bgr8")
    msg.header.stamp.sec, msg.header.stamp.nanosec = 7, 1
    log.add(msg, now_ros=7.5)
    log.flush()
    np.testing.assert_array_equal(np.asarray(PILImage.open(tmp_path / "out" / "7_000000001.png")), rgb)  # lossless
    log.out = tmp_path / "missing"  # the folder is gone: the write fails, is recorded, the log goes on
    msg.header.stamp.sec = 8
    log.add(msg, now_ros=8.5)
    s = log.summary()
    assert s["count"] == 2 and len(s["errors"]) == 1 and s["errors"][0].startswith("stamp 8.000000")
