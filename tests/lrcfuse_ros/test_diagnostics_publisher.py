"""The node's diagnostics on /diagnostics through real DDS (issue 13 item 8): two namespaced instances,
their full names, a hardware_id, rates that mean something at 0.5 Hz, WARN for a silent instance."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed (pip install lrcfuse_ros[ros])")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from lrcfuse_model.streams.image_msg import fill_image_msg  # noqa: E402
from lrcfuse_ros.fusion_node import FusionNode  # noqa: E402
from lrcfuse_ros.qos import image_qos  # noqa: E402


def _image(array: np.ndarray, encoding: str, stamp_ns: int) -> Image:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return fill_image_msg(msg, array, encoding)


def test_two_namespaced_nodes_report_on_absolute_diagnostics_with_their_full_names(
    ros_context, tiny_weights: Path
) -> None:
    base = [Parameter("weights", value=str(tiny_weights)), Parameter("backend", value="torch"),
            Parameter("threads", value=1), Parameter("reliability", value="reliable"),
            Parameter("diagnostics_period_s", value=0.25)]  # fmt: skip
    # front: a 0.5 Hz camera pair (silent for 2 s between frames: not a silent stream); rear: no camera at all
    front = FusionNode(context=ros_context, namespace="front",
                       parameter_overrides=[*base, Parameter("no_data_warning_s", value=5.0)])  # fmt: skip
    rear = FusionNode(context=ros_context, namespace="rear",
                      parameter_overrides=[*base, Parameter("no_data_warning_s", value=1.5)])  # fmt: skip
    io = Node("diag_test_io", context=ros_context)
    statuses: list[tuple[float, DiagnosticStatus]] = []
    io.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(
        (time.monotonic(), s) for s in m.status), 50)  # fmt: skip
    qos = image_qos("reliable", 10)
    pub_thermal = io.create_publisher(Image, "/front/thermal/image_raw", qos)
    pub_rgb = io.create_publisher(Image, "/front/rgb/image_raw", qos)
    executor = MultiThreadedExecutor(num_threads=3, context=ros_context)
    for node in (front, rear, io):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        # diagnostic_updater where installed (no PyPI wheel: here our own publisher), the same status either way
        assert front._diagnostics.uses_updater == (importlib.util.find_spec("diagnostic_updater") is not None)
        end = time.monotonic() + 10
        matched = (pub_thermal.get_subscription_count, pub_rgb.get_subscription_count)
        while time.monotonic() < end and not all(count() for count in matched):
            time.sleep(0.05)
        rng = np.random.default_rng(0)
        sent = []
        for _ in range(4):  # 0.5 Hz: one pair every 2 s (equal stamps: each is fused at once)
            stamp = time.time_ns()
            pub_thermal.publish(_image(rng.integers(0, 256, (16, 20), dtype=np.uint8), "mono8", stamp))
            pub_rgb.publish(_image(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8), "bgr8", stamp))
            sent.append(time.monotonic())
            time.sleep(2.0)
    finally:
        executor.shutdown()
        for node in (front, rear, io):
            node.destroy_node()
        spinner.join(timeout=5)

    names = {s.name for _, s in statuses}
    assert {"front/lrcfuse_fusion: fusion", "rear/lrcfuse_fusion: fusion"} <= names, names
    assert {s.hardware_id for _, s in statuses} == {f"{socket.gethostname()}/cpu"}
    front_values = [(t, {kv.key: kv.value for kv in s.values}, s) for t, s in statuses if s.name.startswith("front/")]
    # from half a second after the second pair to the end, every message reads about 0.5 Hz (a per-second
    # count would alternate 0.00 and 1.00)
    steady = [v for t, v, _ in front_values if t > sent[1] + 0.5]
    assert len(steady) >= 8
    assert all(0.4 <= float(v["fused_hz"]) <= 0.6 for v in steady), [v["fused_hz"] for v in steady]
    assert all(0.4 <= float(v["thermal_hz"]) <= 0.6 for v in steady)
    assert {s.level for t, _, s in front_values if t > sent[1] + 0.5} == {DiagnosticStatus.OK}
    assert steady[-1]["fused_total"] == "4" and 0 < float(steady[-1]["window_s"]) <= 10.0
    rear_last = [s for _, s in statuses if s.name.startswith("rear/")][-1]
    assert rear_last.level == DiagnosticStatus.WARN
    assert rear_last.message == "no data on /rear/rgb/image_raw, /rear/thermal/image_raw"
