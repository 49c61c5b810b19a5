"""What goes out with each fused frame, through real DDS and the real node: fused/camera_info (the RGB
camera's calibration with the fused frame's header) and, with compressed transport, CompressedImage in and out."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed (pip install lrcfuse_ros[ros])")

from ros_testing import SpinningFusionNode, wait_until  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from lrcfuse_model.streams.image_msg import fill_image_msg, image_msg_to_array  # noqa: E402
from lrcfuse_ros.qos import image_qos  # noqa: E402

H, W = 24, 32
RNG = np.random.default_rng(5)




class _Rig(SpinningFusionNode):
    """The node (default reliability: auto) with a reliable camera rig and a subscriber, spun in a thread."""

    def __init__(self, context, weights: Path, **overrides) -> None:
        params = {"weights": str(weights), "backend": "torch", "threads": 1, "workers": 1} | overrides
        super().__init__(context, params, "rig")
        qos = image_qos("reliable", 10)
        self.out: dict[str, list] = {"fused": [], "info": [], "compressed": []}
        self.io.create_subscription(Image, "fused/image", self.out["fused"].append, qos)
        self.io.create_subscription(CameraInfo, "fused/camera_info", self.out["info"].append, qos)
        self.io.create_subscription(CompressedImage, "fused/image/compressed", self.out["compressed"].append, qos)
        self.spin()

    def publisher(self, msg_type, topic: str):
        pub = self.io.create_publisher(msg_type, topic, image_qos("reliable", 10))
        assert wait_until(lambda: pub.get_subscription_count() > 0, 10), f"the node never subscribed to {topic}"
        return pub


@pytest.fixture
def rig(ros_context, tiny_weights: Path):
    made = []

    def make(**overrides) -> _Rig:
        made.append(_Rig(ros_context, tiny_weights, **overrides))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _stamped(msg, sec: int, frame_id: str):
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 0
    msg.header.frame_id = frame_id
    return msg


def test_camera_info_is_republished_with_each_fused_frames_header(rig) -> None:
    r = rig()
    pub_t, pub_r = r.publisher(Image, "thermal/image_raw"), r.publisher(Image, "rgb/image_raw")
    ir = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    vi = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)

    # No camera_info yet: the fused frame goes out alone.
    pub_t.publish(_stamped(fill_image_msg(Image(), ir, "mono16"), 100, "thermal_optical"))
    pub_r.publish(_stamped(fill_image_msg(Image(), vi, "bgr8"), 100, "rgb_optical"))
    assert wait_until(lambda: len(r.out["fused"]) == 1, 20)

    info = CameraInfo(width=W, height=H, distortion_model="plumb_bob")
    info.k = [40.0, 0.0, 16.0, 0.0, 41.0, 12.0, 0.0, 0.0, 1.0]
    info.d = [0.1, -0.02, 0.0, 0.0, 0.0]
    pub_info = r.publisher(CameraInfo, "rgb/camera_info")
    pub_info.publish(_stamped(info, 5, "rgb_optical"))
    assert wait_until(lambda: r.node._camera_info._latest is not None, 10)
    for sec in (101, 102):
        pub_t.publish(_stamped(fill_image_msg(Image(), ir, "mono16"), sec, "thermal_optical"))
        pub_r.publish(_stamped(fill_image_msg(Image(), vi, "bgr8"), sec, "rgb_optical"))
    assert wait_until(lambda: len(r.out["fused"]) == 3 and len(r.out["info"]) == 2, 20), {
        k: len(v) for k, v in r.out.items()
    }
    for fused, relayed in zip(r.out["fused"][1:], r.out["info"]):
        assert relayed.header.stamp == fused.header.stamp and relayed.header.frame_id == fused.header.frame_id
        assert (relayed.width, relayed.height) == (fused.width, fused.height) == (W, H)
        assert list(relayed.k) == list(info.k) and list(relayed.d) == list(info.d)
    assert [m.header.stamp.sec for m in r.out["info"]] == [101, 102]

    # Calibration for another resolution is not sent with the fused frame (a warning says why).
    pub_info.publish(_stamped(CameraInfo(width=2 * W, height=2 * H), 6, "rgb_optical"))
    assert wait_until(lambda: r.node._camera_info._latest.width == 2 * W, 10)
    pub_t.publish(_stamped(fill_image_msg(Image(), ir, "mono16"), 103, "thermal_optical"))
    pub_r.publish(_stamped(fill_image_msg(Image(), vi, "bgr8"), 103, "rgb_optical"))
    assert wait_until(lambda: len(r.out["fused"]) == 4, 20)
    time.sleep(0.3)
    assert len(r.out["info"]) == 2


def test_compressed_inputs_and_compressed_output(rig) -> None:
    cv2 = pytest.importorskip("cv2", reason="OpenCV decodes and encodes compressed images")
    r = rig(thermal_transport="compressed", rgb_transport="compressed", fused_compressed="png")
    pub_t = r.publisher(CompressedImage, "thermal/image_raw/compressed")
    pub_r = r.publisher(CompressedImage, "rgb/image_raw/compressed")
    ir = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
    vi = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    t_msg = CompressedImage(format="mono16; png compressed", data=cv2.imencode(".png", ir)[1].tobytes())
    r_msg = CompressedImage(format="bgr8; png compressed", data=cv2.imencode(".png", vi[:, :, ::-1])[1].tobytes())
    pub_t.publish(_stamped(t_msg, 200, "thermal_optical"))
    pub_r.publish(_stamped(r_msg, 200, "rgb_optical"))
    assert wait_until(lambda: len(r.out["fused"]) == 1 and len(r.out["compressed"]) == 1, 20), r.node.totals
    fused, compressed = r.out["fused"][0], r.out["compressed"][0]
    assert compressed.header == fused.header and compressed.format == "bgr8; png compressed"
    expected = r.node.fuser(ir, vi)  # the same pair fused directly: compression in and out is lossless (PNG)
    np.testing.assert_array_equal(image_msg_to_array(fused), expected)
    np.testing.assert_array_equal(image_msg_to_array(compressed), expected)
