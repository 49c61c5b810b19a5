"""sensor_msgs/CompressedImage <-> numpy (image_transport's compressed formats) on rclpy and rosbags messages."""

from __future__ import annotations

import numpy as np
import pytest

from lrcfuse_model.images.preprocess import InputError
from lrcfuse_model.streams.compressed_msg import compressed_encoding, fill_compressed_msg
from lrcfuse_model.streams.image_msg import RGB_ENCODINGS, THERMAL_ENCODINGS, image_msg_to_array

cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless) encodes and decodes compressed images")


def _rclpy_compressed():
    msg_module = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs wheel not installed")
    return msg_module.CompressedImage()


def _rosbags_compressed():
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.LATEST).types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    return types["sensor_msgs/msg/CompressedImage"](header=header, format="", data=np.zeros(0, np.uint8))


MAKERS = {"rclpy": _rclpy_compressed, "rosbags": _rosbags_compressed}
RNG = np.random.default_rng(1)


def _set(msg, fmt: str, data: bytes):
    msg.format = fmt
    msg.data = np.frombuffer(data, np.uint8).copy() if isinstance(msg.data, np.ndarray) else data
    return msg


@pytest.mark.parametrize("kind", MAKERS)
def test_png_round_trip_is_lossless_colour_and_gray(kind):
    rgb = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    msg = fill_compressed_msg(MAKERS[kind](), rgb, "png")
    assert msg.format == "bgr8; png compressed"
    np.testing.assert_array_equal(image_msg_to_array(msg, RGB_ENCODINGS, "rgb"), rgb)
    gray = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
    msg = fill_compressed_msg(MAKERS[kind](), gray, "png")
    assert msg.format == "mono8; png compressed"
    np.testing.assert_array_equal(image_msg_to_array(msg, THERMAL_ENCODINGS, "thermal"), gray)


@pytest.mark.parametrize("kind", MAKERS)
def test_jpeg_colour_comes_back_rgb(kind):
    """JPEG is lossy: a smooth image comes back close, in RGB order (the file holds BGR)."""
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 220, 120, 20
    msg = fill_compressed_msg(MAKERS[kind](), rgb, "jpeg", quality=95)
    assert msg.format == "bgr8; jpeg compressed bgr8"
    out = image_msg_to_array(msg, RGB_ENCODINGS, "rgb")
    assert out.shape == (32, 32, 3) and np.abs(out.astype(int) - rgb).max() <= 3


@pytest.mark.parametrize("kind", MAKERS)
def test_16bit_thermal_png_as_compressed_image_transport_sends_it(kind):
    """``mono16; png compressed`` (what a radiometric camera's compressed topic carries): 16 bits kept."""
    ir = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
    ok, png = cv2.imencode(".png", ir)
    assert ok
    msg = _set(MAKERS[kind](), "mono16; png compressed", png.tobytes())
    out = image_msg_to_array(msg, THERMAL_ENCODINGS, "thermal")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, ir)
    depth = _set(MAKERS[kind](), "16UC1; compressedDepth png", bytes(12) + png.tobytes())
    np.testing.assert_array_equal(image_msg_to_array(depth, THERMAL_ENCODINGS, "thermal"), ir)


def test_bare_format_takes_the_encoding_of_the_decoded_image():
    ok, png = cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))
    msg = _set(_rosbags_compressed(), "png", png.tobytes())
    assert compressed_encoding("png") == ""
    with pytest.raises(InputError, match=r"thermal: compressed 'bgr8' \('png'\) is not supported here"):
        image_msg_to_array(msg, THERMAL_ENCODINGS, "thermal")
    assert image_msg_to_array(msg, RGB_ENCODINGS, "rgb").shape == (2, 2, 3)


@pytest.mark.parametrize("kind", MAKERS)
def test_bad_compressed_messages_rejected_clearly(kind):
    make = MAKERS[kind]
    with pytest.raises(InputError, match=r"/ir: could not decode the compressed image \('jpeg', 5 bytes\)"):
        image_msg_to_array(_set(make(), "jpeg", b"notjp"), THERMAL_ENCODINGS, "/ir")
    with pytest.raises(InputError, match="/ir: compressed image .* has no data"):
        image_msg_to_array(_set(make(), "png", b""), THERMAL_ENCODINGS, "/ir")
    with pytest.raises(InputError, match=r"/ir: compressed 'bgr8' \('bgr8; jpeg compressed bgr8'\) is not supported"):
        image_msg_to_array(_set(make(), "bgr8; jpeg compressed bgr8", b"x"), THERMAL_ENCODINGS, "/ir")
    with pytest.raises(InputError, match="compressedDepth .* is not supported"):
        image_msg_to_array(_set(make(), "32FC1; compressedDepth png", bytes(20)), THERMAL_ENCODINGS, "/ir")
    with pytest.raises(InputError, match="codec 'webp' is not supported"):
        fill_compressed_msg(make(), np.zeros((2, 2), np.uint8), "webp")
