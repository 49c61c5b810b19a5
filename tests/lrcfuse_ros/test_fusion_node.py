"""The fusion node through real DDS (rclpy + Fast DDS from the PyPI wheels, loopback only).

In-process: the node, a test camera publisher and a subscriber share one rclpy context and a
multi-threaded executor. Three processes: sample_publisher (real RoadScene pairs) -> fusion_node ->
fused_recorder, each its own OS process. Tiny weights keep inference far faster than the frame
rate, so every pair is fused and the counts are exact.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

rclpy = pytest.importorskip("rclpy", reason='rclpy wheels not installed (pip install "lrcfuse_ros[ros]")')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_testing import SpinningFusionNode, wait_until  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from lrcfuse_model.streams.image_msg import fill_image_msg, image_msg_to_array, stamp_to_nanoseconds  # noqa: E402
from lrcfuse_ros.fusion_node import FusionNode  # noqa: E402
from lrcfuse_ros.qos import image_qos  # noqa: E402


def _image(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = frame_id
    return fill_image_msg(msg, array, encoding)


class _Harness(SpinningFusionNode):
    """A camera publisher and a fused/diagnostics subscriber around a FusionNode, spun in a thread."""

    def __init__(self, context, overrides: dict) -> None:
        super().__init__(context, overrides, "test_io")
        qos = image_qos("reliable", 10)
        self.pub_thermal = self.io.create_publisher(Image, "thermal/image_raw", qos)
        self.pub_rgb = self.io.create_publisher(Image, "rgb/image_raw", qos)
        self.fused: list[Image] = []
        self.diagnostics: list[dict[str, str]] = []
        self.io.create_subscription(Image, "fused/image", self.fused.append, qos)
        self.io.create_subscription(DiagnosticArray, "diagnostics", self._on_diag, 10)
        self.spin()
        matched = wait_until(
            lambda: self.pub_thermal.get_subscription_count() > 0
            and self.pub_rgb.get_subscription_count() > 0
            and self.node._pub_fused.get_subscription_count() > 0,
            timeout=10,
        )
        assert matched, "DDS discovery on loopback did not match the test endpoints within 10 s"

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics.append({kv.key: kv.value for kv in status.values} | {"_level": status.level})


@pytest.fixture
def harness_factory(ros_context, tiny_weights: Path):
    made: list[_Harness] = []

    def make(**overrides) -> _Harness:
        base = {
            "weights": str(tiny_weights),
            "backend": "torch",
            "threads": 1,
            "reliability": "reliable",
            "diagnostics_period_s": 0.3,
            "no_data_warning_s": 0.8,
            "log_throttle_s": 0.2,
        }
        h = _Harness(ros_context, base | overrides)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_node_fuses_pairs_and_survives_bad_frames(harness_factory, capfd: pytest.CaptureFixture) -> None:
    h = harness_factory(min_interval=0.0)
    rng = np.random.default_rng(0)
    height, width = 40, 48
    # frames: good x3, thermal in a wrong encoding, thermal of another size, good x3 (the last one only
    # completes the pairing of the one before: without min_interval a pair is emitted once the next frame
    # shows no nearer partner)
    kinds = ["good", "good", "good", "bad_encoding", "size_mismatch", "good", "good", "good"]
    t0 = time.time_ns()
    rgb_stamps = []
    for k, kind in enumerate(kinds):
        base = t0 + k * 300_000_000
        t_stamp, r_stamp = base - int(rng.integers(0, 10_000_000)), base - int(rng.integers(0, 10_000_000))
        vi = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if kind == "bad_encoding":
            thermal = _image(np.repeat(rng.integers(0, 256, (height, width, 1), dtype=np.uint8), 3, 2), "bgr8",
                             t_stamp, "thermal_camera")  # fmt: skip
        elif kind == "size_mismatch":
            thermal = _image(rng.integers(0, 65535, (height // 2, width // 2), dtype=np.uint16), "mono16",
                             t_stamp, "thermal_camera")  # fmt: skip
        else:
            raw = rng.integers(0, 65535, (height, width), dtype=np.uint16)
            thermal = _image(raw, "mono16", t_stamp, "thermal_camera")
        h.pub_thermal.publish(thermal)
        h.pub_rgb.publish(_image(vi, "bgr8", r_stamp, "rgb_camera"))
        rgb_stamps.append(r_stamp)
        time.sleep(0.3)

    expected = [s for s, kind in zip(rgb_stamps[:-1], kinds[:-1]) if kind == "good"]
    assert wait_until(lambda: len(h.fused) >= len(expected), timeout=10), f"fused {len(h.fused)} of {len(expected)}"
    time.sleep(0.3)
    assert [stamp_to_nanoseconds(m.header.stamp) for m in h.fused] == expected
    for msg in h.fused:
        assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (width, height, "bgr8", "rgb_camera")
        assert image_msg_to_array(msg, ("bgr8",)).shape == (height, width, 3)
    totals = h.node.totals
    assert totals["failed_pairs"] == 2
    assert totals["fused"] == len(expected)
    assert totals.get("pairs_dropped_busy", 0) == 0

    # the thermal camera stops: diagnostics name the silent topic, the node keeps fusing nothing but runs
    stop = time.monotonic() + 1.5
    while time.monotonic() < stop:
        vi = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        h.pub_rgb.publish(_image(vi, "bgr8", time.time_ns(), "rgb_camera"))
        time.sleep(0.1)
    assert wait_until(lambda: any("thermal/image_raw" in d.get("silent_topics", "") for d in h.diagnostics), 3)
    last = h.diagnostics[-1]
    for key in ("thermal_hz", "rgb_hz", "fused_hz", "latency_ms_mean", "latency_ms_p50", "latency_ms_max",
                "inference_ms_mean", "pairs_dropped_busy", "unpaired_thermal", "unpaired_rgb", "failed_pairs",
                "backend"):  # fmt: skip
        assert key in last, key
    assert last["failed_pairs"] == "2" and last["backend"] == "torch"
    assert last["thermal_reliability"] == last["rgb_reliability"] == "reliable"
    assert any(float(d["latency_ms_mean"]) > 0 for d in h.diagnostics if d["latency_ms_mean"] != "nan")

    # the thermal camera comes back: an info line says so and fusing resumes
    fused_before = len(h.fused)
    for _ in range(3):
        stamp = time.time_ns()
        raw = rng.integers(0, 65535, (height, width), dtype=np.uint16)
        h.pub_thermal.publish(_image(raw, "mono16", stamp, "thermal_camera"))
        h.pub_rgb.publish(_image(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "bgr8", stamp, "rgb_camera"))
        time.sleep(0.3)
    assert wait_until(lambda: len(h.fused) > fused_before, timeout=10)

    err = capfd.readouterr().err
    assert "encoding 'bgr8' is not supported here; expected one of ['mono8', 'mono16', '16UC1', '32FC1'" in err
    assert "thermal image on '/thermal/image_raw' is 24x20 but RGB image on '/rgb/image_raw' is 48x40" in err
    assert "no message on '/thermal/image_raw'" in err
    assert "data on '/thermal/image_raw' again after" in err


def test_min_interval_fuses_each_pair_without_waiting_for_the_next_frame(harness_factory) -> None:
    """Cameras 300 ms apart with stamps jittered by up to 10 ms, min_interval 0.25 s: every pair, the last
    one too, is fused as soon as its second image arrives."""
    h = harness_factory(min_interval=0.25)
    rng = np.random.default_rng(5)
    t0 = time.time_ns()
    rgb_stamps = []
    for k in range(4):
        base = t0 + k * 300_000_000
        t_stamp, r_stamp = base - int(rng.integers(0, 10_000_000)), base - int(rng.integers(0, 10_000_000))
        h.pub_thermal.publish(_image(rng.integers(0, 256, (24, 32), dtype=np.uint8), "mono8", t_stamp, "t"))
        h.pub_rgb.publish(_image(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "bgr8", r_stamp, "rgb"))
        rgb_stamps.append(r_stamp)
        time.sleep(0.3)
    assert wait_until(lambda: len(h.fused) >= 4, timeout=10), f"fused {len(h.fused)} of 4"
    assert [stamp_to_nanoseconds(m.header.stamp) for m in h.fused] == rgb_stamps
    assert h.node.totals.get("pairs_dropped_busy", 0) == 0


@pytest.mark.parametrize("jump_s", [20.0, 1_000_000.0], ids=["looping-bag", "camera-restart"])
def test_stamps_going_back_restart_pairing_with_a_warning(harness_factory, capfd, jump_s: float) -> None:
    """Both cameras' stamps go back (a looping bag, a restarted rig): a warning per stream, and fusing goes on
    from the first frame of the new timeline."""
    h = harness_factory(min_interval=0.25)
    rng = np.random.default_rng(6)
    t0 = time.time_ns()
    stamps = [t0 + k * 300_000_000 for k in range(3)]
    stamps += [t0 - int(jump_s * 1e9) + k * 300_000_000 for k in range(3)]  # the jump back
    for stamp in stamps:
        h.pub_thermal.publish(_image(rng.integers(0, 256, (24, 32), dtype=np.uint8), "mono8", stamp, "t"))
        h.pub_rgb.publish(_image(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "bgr8", stamp, "rgb"))
        time.sleep(0.3)
    assert wait_until(lambda: len(h.fused) >= 6, timeout=10), f"fused {len(h.fused)} of 6: {h.node.totals}"
    assert [stamp_to_nanoseconds(m.header.stamp) for m in h.fused] == stamps  # none lost after the jump
    assert h.node.totals["time_jumps"] == 2
    err = capfd.readouterr().err
    for topic in ("/thermal/image_raw", "/rgb/image_raw"):
        assert f"stamps on '{topic}' went back {jump_s + 0.6:.1f}" in err
    assert "pairing restarted on that stream" in err


def test_pairs_completed_together_are_all_fused(harness_factory) -> None:
    """A late frame completes one pair while the next pair is already complete: both are fused (an idle
    inference thread takes each), not only the newest."""
    h = harness_factory(min_interval=0.01)
    t0 = time.time_ns()
    images = {k: _image(np.full((24, 32), 40 * k, np.uint8), "mono8", 0, "t") for k in range(2)}
    colour = {k: _image(np.full((24, 32, 3), 40 * k, np.uint8), "bgr8", 0, "rgb") for k in range(2)}

    def send(publisher, msg, stamp_ns: int) -> None:
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        publisher.publish(msg)
        time.sleep(0.15)  # arrival in this order

    # pair 0 is 8 ms apart: a thermal frame up to 16 ms later could be nearer to its RGB image, so it waits;
    # pair 1 has equal stamps and completes with its thermal image, which also settles pair 0
    send(h.pub_thermal, images[0], t0)
    send(h.pub_rgb, colour[0], t0 + 8_000_000)
    send(h.pub_rgb, colour[1], t0 + 300_000_000)
    assert len(h.fused) == 0
    send(h.pub_thermal, images[1], t0 + 300_000_000)
    assert wait_until(lambda: len(h.fused) >= 2, timeout=10), f"fused {len(h.fused)} of 2"
    assert [stamp_to_nanoseconds(m.header.stamp) for m in h.fused] == [t0 + 8_000_000, t0 + 300_000_000]
    assert h.node.totals.get("pairs_dropped_busy", 0) == 0


@pytest.mark.parametrize(("encoding", "expected"), [("bgr8", "bgr8"), ("rgb8", "bgr8"), ("mono8", "mono8")])
def test_one_stream_keeps_one_output_encoding(harness_factory, encoding: str, expected: str) -> None:
    """A colour camera gets bgr8 on every frame, also those whose R = G = B (fused as gray); mono8 only for mono."""
    h = harness_factory()
    rng = np.random.default_rng(3)
    t0 = time.time_ns()
    n = 6
    for k in range(n):
        stamp = t0 + k * 200_000_000
        h.pub_thermal.publish(_image(rng.integers(0, 256, (24, 32), dtype=np.uint8), "mono8", stamp, "t"))
        vi = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        if k % 2:
            vi[:, :, 1] = vi[:, :, 2] = vi[:, :, 0]  # a gray frame of the colour camera
        h.pub_rgb.publish(_image(vi[:, :, 0] if encoding == "mono8" else vi, encoding, stamp, "rgb"))
        time.sleep(0.2)
    assert wait_until(lambda: len(h.fused) >= n, timeout=10), h.node.totals  # equal stamps: each pairs at once
    assert [m.encoding for m in h.fused] == [expected] * n
    if expected == "bgr8":  # the gray frames: three equal channels
        gray = image_msg_to_array(h.fused[1], ("bgr8",))
        assert np.array_equal(gray[:, :, 0], gray[:, :, 1]) and np.array_equal(gray[:, :, 0], gray[:, :, 2])


def test_node_publishes_mono8_when_colour_is_off(harness_factory) -> None:
    h = harness_factory(colour=False)
    rng = np.random.default_rng(1)
    t0 = time.time_ns()
    for k in range(3):
        stamp = t0 + k * 200_000_000
        h.pub_thermal.publish(_image(rng.integers(0, 256, (32, 36), dtype=np.uint8), "mono8", stamp, "t"))
        vi = rng.integers(0, 256, (32, 36, 3), dtype=np.uint8)
        if k == 1:
            vi[:, :, 1] = vi[:, :, 2] = vi[:, :, 0]  # a gray frame in an rgb8 message
        h.pub_rgb.publish(_image(vi, "rgb8", stamp, "rgb_optical"))
        time.sleep(0.2)
    # equal stamps pair at once, so all three are fused
    assert wait_until(lambda: len(h.fused) >= 3, timeout=10)
    assert {(m.encoding, m.width, m.height, m.header.frame_id) for m in h.fused} == {("mono8", 36, 32, "rgb_optical")}


@pytest.mark.parametrize(
    "overrides",
    [
        {"homography": [2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0]},  # thermal at half the RGB resolution
        {"size_mismatch": "resize_ir"},
        {"homography_file": "FILE"},
    ],
    ids=["homography", "resize_ir", "homography_file"],
)
def test_cameras_of_different_resolution_are_fused_in_the_rgb_frame(harness_factory, tmp_path, overrides) -> None:
    if overrides.get("homography_file") == "FILE":
        (tmp_path / "h.yaml").write_text("homography: [[2, 0, 0], [0, 2, 0], [0, 0, 1]]\n")
        overrides = {"homography_file": str(tmp_path / "h.yaml")}
    h = harness_factory(**overrides)
    rng = np.random.default_rng(2)
    t0 = time.time_ns()
    for k in range(2):
        stamp = t0 + k * 200_000_000
        h.pub_thermal.publish(_image(rng.integers(0, 65535, (20, 24), dtype=np.uint16), "16UC1", stamp, "t"))
        h.pub_rgb.publish(_image(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), "bgr8", stamp, "rgb_camera"))
        time.sleep(0.2)
    assert wait_until(lambda: len(h.fused) >= 2, timeout=10), h.node.totals
    assert {(m.width, m.height, m.encoding) for m in h.fused} == {(48, 40, "bgr8")}
    assert h.node.totals.get("failed_pairs", 0) == 0


@pytest.mark.parametrize(
    ("model", "backend", "expected_backend", "log_line"),
    [
        # the defaults: model auto on a CPU-only machine takes LRCFuse-RT, backend auto takes ONNX Runtime
        ("auto", "auto", "onnxruntime", "model auto: rt (inference on the CPU with onnxruntime; the default model"),
        ("rt", "torch", "torch", "model rt (inference on the CPU with torch)"),
        ("rt", "openvino", "openvino", "model rt (inference on the CPU with openvino)"),
    ],
    ids=["auto", "rt", "rt-openvino"],
)
def test_the_rt_model_fuses_real_frames(harness_factory, capfd, model, backend, expected_backend, log_line) -> None:
    from lrcfuse_model.images.preprocess import read_image
    from lrcfuse_model.inference.backends import auto_order

    if backend == "openvino" and not importlib.util.find_spec("openvino"):
        pytest.skip('no OpenVINO: the openvino package is not installed (pip install "lrcfuse_ros[openvino]")')
    if backend == "auto":
        first = auto_order()[0][0]
        if first == "tensorrt":
            pytest.skip("TensorRT and CUDA here: model auto takes the default model (tested in test_model_choice)")
        expected_backend, log_line = first, log_line.replace("onnxruntime", first)
    h = harness_factory(weights="", model=model, backend=backend)
    assert (h.node.model_label, h.node.backend_name) == ("rt", expected_backend)
    frames = []
    for name in ("FLIR_00211.jpg", "FLIR_00977.jpg"):
        ir, vi = read_image(REPO_ROOT / "samples" / "ir" / name), read_image(REPO_ROOT / "samples" / "vi" / name)
        frames.append((ir if ir.ndim == 2 else ir[:, :, 0], vi))
    t0 = time.time_ns()
    stamps = []
    for k, (ir, vi) in enumerate(frames * 2):  # equal stamps: each pair is complete at once
        stamp = t0 + k * 100_000_000
        h.pub_thermal.publish(_image(ir, "mono8", stamp, "thermal_camera"))
        h.pub_rgb.publish(_image(vi, "bgr8", stamp, "rgb_camera"))
        stamps.append(stamp)
        time.sleep(0.1)
    assert wait_until(lambda: len(h.fused) >= 4, timeout=20), h.node.totals
    assert [stamp_to_nanoseconds(m.header.stamp) for m in h.fused] == stamps
    for msg, (ir, vi) in zip(h.fused, frames * 2):
        fused = image_msg_to_array(msg, ("bgr8",))
        assert fused.shape == vi.shape
        # a fusion: neither input copied, both present (closer to each than the other input is)
        gray = fused.astype(np.float32).mean(axis=2)
        vi_gray = vi.astype(np.float32).mean(axis=2)
        assert gray.std() > 10 and not np.array_equal(fused, vi)
        assert np.abs(gray - vi_gray).mean() < np.abs(ir.astype(np.float32) - vi_gray).mean()
    assert wait_until(lambda: any(d.get("model") == "rt" and d["network_ms_mean"] != "nan" for d in h.diagnostics), 3)
    assert log_line in capfd.readouterr().err


def test_a_bad_model_name_is_a_clear_startup_error(ros_env) -> None:
    env = dict(ros_env, PYTHONPATH=str(REPO_ROOT), LRCFUSE_NO_MALLOC_TUNING="1")
    run = subprocess.run(
        [sys.executable, "-m", "lrcfuse_ros.fusion_node", "--ros-args", "-p", "model:=fastest"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        "[lrcfuse_fusion] cannot start: model: expected one of auto, default, rt or a weights file "
        "(.pt, .onnx, TensorRT engine), got 'fastest' (no such file)"
    ) in run.stderr
    assert "Traceback" not in run.stderr


def test_a_weights_file_wins_over_model(ros_context, tiny_weights: Path, capfd) -> None:
    overrides = [Parameter("weights", value=str(tiny_weights)), Parameter("model", value="rt"),
                 Parameter("backend", value="torch")]  # fmt: skip
    node = FusionNode(context=ros_context, parameter_overrides=overrides)
    try:
        assert node.model_label == str(tiny_weights)
        assert node.fuser.backend.model.__class__.__name__ == "LRCFuse"  # the tiny default-architecture file
    finally:
        node.destroy_node()
    assert f"model: weights:={tiny_weights} (inference on the CPU with torch; a non-empty weights wins over model; " \
        "model:=rt is not used)" in capfd.readouterr().err


def test_node_refuses_to_start_without_weights(ros_context, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        FusionNode(context=ros_context, parameter_overrides=[Parameter("weights", value=str(tmp_path / "missing.pt")),
                                                             Parameter("backend", value="torch")])  # fmt: skip


def test_detector_enabled_without_weights_is_a_startup_error(ros_context, tiny_weights: Path) -> None:
    from lrcfuse_ros.params import ParameterError

    overrides = [Parameter("weights", value=str(tiny_weights)), Parameter("detector.enabled", value=True)]
    with pytest.raises(ParameterError, match="detector.weights is empty"):
        FusionNode(context=ros_context, parameter_overrides=overrides)


# -- three OS processes ---------------------------------------------------------------------------


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen, timeout: float = 10) -> int | None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            return None
    return proc.returncode


def test_three_processes_publisher_node_recorder(ros_env, shared_data: Path, tiny_weights: Path, tmp_path: Path):
    dataset = shared_data / "roadscene221"
    if not (dataset / "ir").is_dir():
        pytest.skip(f"{dataset} not found")
    n = 5
    env = dict(ros_env, PYTHONPATH=str(REPO_ROOT))
    for key in ("LRCFUSE_NO_MALLOC_TUNING", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"):
        env.pop(key, None)  # the node restarts itself with the allocator settings, as users run it
    # 2 Hz with stamps up to 15 ms before the send: frames of one camera are >= 485 ms apart, so with
    # min_interval 0.45 every pair, the last one too, goes out as soon as its second image arrives
    node = _spawn(["lrcfuse_ros.fusion_node", "--ros-args", "-p", f"weights:={tiny_weights}", "-p", "backend:=torch",
                   "-p", "threads:=1", "-p", "reliability:=reliable", "-p", "diagnostics_period_s:=0.5",
                   "-p", "min_interval:=0.45"],
                  env, tmp_path / "node.log")  # fmt: skip
    recorder = _spawn(["lrcfuse_ros.fused_recorder", "--out", str(tmp_path / "fused"), "--count", str(n),
                       "--timeout", "60"], env, tmp_path / "recorder.log")  # fmt: skip
    try:
        publisher = subprocess.run(
            [sys.executable, "-m", "lrcfuse_ros.sample_publisher", "--dir", str(dataset), "--count", str(n),
             "--rate", "2", "--size", "160x128", "--thermal-encoding", "mono16", "--jitter-ms", "15",
             "--reliability", "reliable", "--wait-subscribers", "30", "--summary", str(tmp_path / "published.json")],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert publisher.returncode == 0, publisher.stdout + publisher.stderr
        recorder.wait(timeout=60)
        if sys.platform == "linux":  # the node re-exec'd itself in place with the fast allocator settings
            assert b"MALLOC_MMAP_MAX_=0" in Path(f"/proc/{node.pid}/environ").read_bytes().split(b"\0")
    finally:
        _stop(recorder)
        node_rc = _stop(node)
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert recorder.returncode == 0, logs
    assert node_rc == 0, logs["node.log"]  # Ctrl-C: clean exit
    assert "Traceback" not in logs["node.log"], logs["node.log"]

    published = json.loads((tmp_path / "published.json").read_text())
    summary = json.loads((tmp_path / "fused" / "summary.json").read_text())
    assert published["published"] == n
    # every pair is fused, in order
    assert summary["count"] == n
    assert summary["stamps"] == pytest.approx(published["rgb_stamps"], abs=1e-6)  # float epoch seconds
    assert summary["sizes"] == ["160x128"] and summary["encodings"] == ["bgr8"]
    assert summary["frame_ids"] == ["rgb_camera"]
    assert len(list((tmp_path / "fused").glob("*.png"))) == n
    assert summary["latency_ms"]["max"] > 0


def test_node_reads_the_shipped_params_file(ros_env, tiny_weights: Path) -> None:
    """config/fusion.yaml goes through rcl's own YAML parser (empty lists included) into the declared parameters."""
    from rclpy.context import Context

    from lrcfuse_ros.params import PARAMETERS

    context = Context()
    rclpy.init(
        args=["fusion_node", "--ros-args", "--params-file", str(REPO_ROOT / "config" / "fusion.yaml")],
        context=context,
        domain_id=int(ros_env["ROS_DOMAIN_ID"]),
    )
    try:
        overrides = [Parameter("weights", value=str(tiny_weights)), Parameter("backend", value="torch")]
        node = FusionNode(context=context, parameter_overrides=overrides)
        try:
            expected = {name: spec.default for name, spec in PARAMETERS.items()}
            expected.update(weights=str(tiny_weights), backend="torch")
            assert node.values == expected
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_node_runs_the_detector_on_fused_frames(harness_factory, yolov5n_weights: Path, capfd) -> None:
    from std_msgs.msg import String

    from lrcfuse_model.images.preprocess import read_image
    from lrcfuse_ros.detection_output import VISION_MSGS_AVAILABLE

    # The shipped fusion weights (not the tiny random ones): the detector must see a real fused image.
    h = harness_factory(**{"weights": "", "detector.enabled": True, "detector.weights": str(yolov5n_weights),
                           "detector.image_size": 320})  # fmt: skip
    annotated: list[Image] = []
    payloads: list = []
    h.io.create_subscription(Image, "detections/image", annotated.append, image_qos("reliable", 10))
    if VISION_MSGS_AVAILABLE:
        from vision_msgs.msg import Detection2DArray

        h.io.create_subscription(Detection2DArray, "detections", payloads.append, image_qos("reliable", 10))
    else:
        h.io.create_subscription(String, "detections/json", payloads.append, image_qos("reliable", 10))
    ir = read_image(REPO_ROOT / "samples" / "ir" / "FLIR_00211.jpg")
    vi = read_image(REPO_ROOT / "samples" / "vi" / "FLIR_00211.jpg")
    ir = ir if ir.ndim == 2 else ir[:, :, 0]
    assert wait_until(lambda: h.node._pub_det_image.get_subscription_count() > 0, 10)
    stamps = []
    t0 = time.time_ns()
    for k in range(2):
        stamp = t0 + k * 500_000_000
        h.pub_thermal.publish(_image(ir, "mono8", stamp, "thermal_camera"))
        h.pub_rgb.publish(_image(vi, "bgr8", stamp, "rgb_camera"))
        stamps.append(stamp)
        time.sleep(0.5)
    assert wait_until(lambda: len(annotated) >= 2 and len(payloads) >= 2, timeout=60), (len(annotated), len(payloads))
    assert [stamp_to_nanoseconds(m.header.stamp) for m in annotated] == stamps
    assert {(m.encoding, m.width, m.height) for m in annotated} == {("bgr8", vi.shape[1], vi.shape[0])}
    if VISION_MSGS_AVAILABLE:
        assert all(d.header.frame_id == "rgb_camera" for d in payloads)
        assert all(len(d.detections) for d in payloads)  # the frame shows two cars
    else:
        records = [json.loads(p.data) for p in payloads]
        # FLIR_00211 shows two cars (found at 0.80 and 0.73 on the visible frame): the fused frame keeps them.
        assert all(any(det["class_name"] == "car" for det in r["detections"]) for r in records), records
        assert [r["stamp"]["sec"] * 1_000_000_000 + r["stamp"]["nanosec"] for r in records] == stamps
        for record in records:
            for det in record["detections"]:
                assert det["class_name"] in h.node.detector.names and 0 <= det["score"] <= 1
                x1, y1, x2, y2 = det["box_xyxy"]
                assert 0 <= x1 <= x2 <= vi.shape[1] and 0 <= y1 <= y2 <= vi.shape[0]
        assert "vision_msgs is not installed: detections go out as JSON" in capfd.readouterr().err
    assert h.node.totals.get("fused") == 2


def test_silent_topic_warning_points_at_a_reliability_mismatch(harness_factory, capfd) -> None:
    h = harness_factory(reliability="reliable", no_data_warning_s=0.5)
    best_effort = h.io.create_publisher(Image, "rgb/image_raw", image_qos("best_effort", 5))
    for _ in range(8):  # a best-effort camera: the reliable subscription never gets its frames
        best_effort.publish(_image(np.zeros((8, 8, 3), np.uint8), "bgr8", time.time_ns(), "rgb_camera"))
        time.sleep(0.2)
    assert wait_until(lambda: h.node.totals.get("rgb", 0) == 0 and len(h.diagnostics) > 2, 5)
    err = capfd.readouterr().err
    assert "no message on '/rgb/image_raw'" in err
    assert "a reliable subscription never matches a best-effort publisher; set reliability:=best_effort" in err
    assert "offering incompatible QoS" in err  # rclpy's own event, as soon as the publisher appeared
