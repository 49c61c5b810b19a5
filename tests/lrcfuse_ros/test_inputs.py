"""Camera inputs through real DDS: reliability auto follows the discovered publishers; compressed transport's topic."""

from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed (pip install lrcfuse_ros[ros])")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from ros_testing import wait_until  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from lrcfuse_ros.inputs import CameraInput, transport_topic  # noqa: E402
from lrcfuse_ros.qos import adapted_reliability, image_qos  # noqa: E402


def test_adapted_reliability_is_ros2_bag_records_rule() -> None:
    assert adapted_reliability([]) is None
    assert adapted_reliability(["reliable"]) == "reliable"
    assert adapted_reliability(["RELIABLE", "reliable"]) == "reliable"
    assert adapted_reliability(["reliable", "best_effort"]) == "best_effort"
    assert adapted_reliability(["best_effort"]) == "best_effort"


def test_transport_topic_follows_image_transport() -> None:
    assert transport_topic("rgb/image_raw", "raw") == "rgb/image_raw"
    assert transport_topic("rgb/image_raw", "compressed") == "rgb/image_raw/compressed"
    with pytest.raises(ValueError, match=r"transport: expected one of \('raw', 'compressed'\), got 'theora'"):
        transport_topic("rgb/image_raw", "theora")


@pytest.fixture
def spun(ros_context):
    """Two nodes (the input's and a camera's) spun in a thread; yields (input_node, camera_node)."""
    node = Node("input_under_test", context=ros_context)
    camera = Node("camera", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(camera)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node, camera
    executor.shutdown()
    node.destroy_node()
    camera.destroy_node()
    thread.join(timeout=5)


def _frame(i: int) -> Image:
    msg = Image()
    msg.header.frame_id = str(i)
    msg.height, msg.width, msg.encoding, msg.step = 1, 1, "mono8", 1
    msg.data = bytes([i % 256])
    return msg


def test_auto_waits_for_a_publisher_then_matches_reliable_then_best_effort(spun) -> None:
    node, camera = spun
    got: list[str] = []
    cam_input = CameraInput(node, "cam/image_raw", lambda m: got.append(m.header.frame_id), reliability="auto")
    assert cam_input.reliability == "waiting" and cam_input.subscription is None
    assert cam_input.topic_name == "/cam/image_raw"

    reliable_pub = camera.create_publisher(Image, "cam/image_raw", image_qos("reliable", 10))
    assert wait_until(lambda: cam_input.reliability == "reliable", 10), cam_input.reliability
    assert wait_until(lambda: reliable_pub.get_subscription_count() == 1, 10)
    reliable_pub.publish(_frame(1))
    assert wait_until(lambda: "1" in got, 5)

    # A best-effort camera joins: a reliable subscription would never match it, so auto subscribes best effort.
    best_effort_pub = camera.create_publisher(Image, "cam/image_raw", image_qos("best_effort", 10))
    assert wait_until(lambda: cam_input.reliability == "best_effort", 10), cam_input.reliability
    assert wait_until(
        lambda: best_effort_pub.get_subscription_count() == 1 and reliable_pub.get_subscription_count() == 1, 10
    )
    for i in range(2, 6):  # best effort: a frame may be lost in principle, so send several of each
        best_effort_pub.publish(_frame(100 + i))
        reliable_pub.publish(_frame(i))
        time.sleep(0.05)
    assert wait_until(lambda: any(f.startswith("10") for f in got) and any(f in "2345" for f in got), 5), got
    cam_input.destroy()


@pytest.mark.parametrize("reliability", ["reliable", "best_effort"])
def test_a_fixed_reliability_subscribes_at_once(spun, reliability) -> None:
    node, _ = spun
    cam_input = CameraInput(node, "cam/image_raw", lambda m: None, "compressed", reliability)
    assert cam_input.reliability == reliability and cam_input.msg_type is CompressedImage
    assert cam_input.subscription.topic_name == "/cam/image_raw/compressed"
    assert cam_input.subscription.qos_profile.reliability.name.lower() == reliability
