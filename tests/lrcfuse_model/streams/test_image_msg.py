"""sensor_msgs/Image <-> numpy on real rclpy messages and real rosbags messages."""

from __future__ import annotations

import numpy as np
import pytest

from lrcfuse_model.images.preprocess import InputError
from lrcfuse_model.streams.image_msg import (
    OUTPUT_ENCODINGS,
    RGB_ENCODINGS,
    THERMAL_ENCODINGS,
    array_to_image_fields,
    fill_image_msg,
    image_msg_to_array,
    stamp_to_nanoseconds,
    stamp_to_seconds,
)


def _rclpy_image():
    msg_module = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs wheel not installed")
    return msg_module.Image()


def _rosbags_image():
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.LATEST).types
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    return types["sensor_msgs/msg/Image"](
        header=header, height=0, width=0, encoding="", is_bigendian=0, step=0, data=np.zeros(0, np.uint8)
    )


MAKERS = {"rclpy": _rclpy_image, "rosbags": _rosbags_image}


def _set(msg, height, width, encoding, step, data: bytes, is_bigendian=0):
    msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian = height, width, encoding, step, is_bigendian
    msg.data = np.frombuffer(data, np.uint8).copy() if isinstance(msg.data, np.ndarray) else data
    return msg


RNG = np.random.default_rng(0)
MONO8 = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
MONO16 = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize(
    "encoding, array",
    [("mono8", MONO8), ("mono16", MONO16), ("16UC1", MONO16), ("rgb8", RGB), ("bgr8", RGB)],
)
def test_round_trip_every_encoding(kind, encoding, array):
    msg = fill_image_msg(MAKERS[kind](), array, encoding)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (5, 7, encoding, 0)
    back = image_msg_to_array(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("kind", MAKERS)
def test_bgr8_bytes_are_blue_first_and_come_back_rgb(kind):
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    fields = array_to_image_fields(rgb, "bgr8")
    assert fields["data"][:3] == bytes([30, 20, 10])
    msg = _set(MAKERS[kind](), 1, 2, "bgr8", 6, fields["data"])
    assert image_msg_to_array(msg)[0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_16bit_big_and_little_endian(kind, encoding):
    values = np.array([[1, 256, 65535]], np.uint16)
    big = _set(MAKERS[kind](), 1, 3, encoding, 6, values.astype(">u2").tobytes(), is_bigendian=1)
    little = _set(MAKERS[kind](), 1, 3, encoding, 6, values.astype("<u2").tobytes(), is_bigendian=0)
    for msg in (big, little):
        out = image_msg_to_array(msg)
        assert out.dtype == np.uint16 and out.dtype.isnative
        np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize(
    "encoding, array, bytes_per_pixel",
    [("mono8", MONO8, 1), ("mono16", MONO16, 2), ("rgb8", RGB, 3), ("bgr8", RGB, 3)],
)
def test_padded_rows(kind, encoding, array, bytes_per_pixel):
    """step > width * bytes per pixel (odd padding, as aligned drivers send): padding is ignored."""
    fields = array_to_image_fields(array, encoding)
    row = 7 * bytes_per_pixel
    step = row + 5
    padded = b"".join(fields["data"][i * row : (i + 1) * row] + b"\xee" * 5 for i in range(5))
    msg = _set(MAKERS[kind](), 5, 7, encoding, step, padded)
    np.testing.assert_array_equal(image_msg_to_array(msg), array)


@pytest.mark.parametrize("encoding, order", [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0])])
def test_alpha_encodings_drop_alpha(encoding, order):
    pixels = RNG.integers(0, 256, (2, 3, 4), dtype=np.uint8)
    msg = _set(_rosbags_image(), 2, 3, encoding, 12, pixels.tobytes())
    np.testing.assert_array_equal(image_msg_to_array(msg), pixels[:, :, order])


def test_gray_to_colour_and_colour_to_mono8():
    gray = np.array([[0, 128, 255]], np.uint8)
    assert array_to_image_fields(gray, "bgr8")["data"] == bytes([0, 0, 0, 128, 128, 128, 255, 255, 255])
    colour = np.array([[[255, 0, 0], [0, 0, 255], [200, 200, 200]]], np.uint8)
    luma = array_to_image_fields(colour, "mono8")["data"]
    assert list(luma) == [76, 29, 200]  # 0.299 * 255, 0.114 * 255, gray stays gray


@pytest.mark.parametrize("kind", MAKERS)
def test_bad_messages_rejected_clearly(kind):
    make = MAKERS[kind]
    with pytest.raises(InputError, match=r"/cam/thermal: encoding 'yuv422' .*'mono8', 'mono16', '16UC1', '32FC1'"):
        image_msg_to_array(_set(make(), 1, 1, "yuv422", 2, b"\0\0"), THERMAL_ENCODINGS, "/cam/thermal")
    with pytest.raises(InputError, match=r"rgb: encoding 'nv21' is not supported"):
        image_msg_to_array(_set(make(), 1, 1, "nv21", 2, b"\0\0"), RGB_ENCODINGS, "rgb")
    with pytest.raises(InputError, match=r"rgb: encoding 'mono16' .*\['bgr8', 'rgb8', 'mono8', 'rgba8'"):
        image_msg_to_array(_set(make(), 1, 1, "mono16", 2, b"\0\0"), RGB_ENCODINGS, "rgb")
    with pytest.raises(InputError, match="step 5 is smaller than width 2 x 3 bytes per pixel = 6"):
        image_msg_to_array(_set(make(), 1, 2, "rgb8", 5, bytes(5)), name="rgb")
    with pytest.raises(InputError, match="data has 11 bytes, expected step x height = 6 x 2 = 12"):
        image_msg_to_array(_set(make(), 2, 2, "rgb8", 6, bytes(11)), name="rgb")
    with pytest.raises(InputError, match="empty image"):
        image_msg_to_array(_set(make(), 0, 4, "mono8", 4, b""), name="rgb")


def test_bad_arrays_rejected_clearly():
    with pytest.raises(InputError, match="output encoding 'yuv422'"):
        array_to_image_fields(MONO8, "yuv422")
    with pytest.raises(InputError, match="mono16 image: expected uint16 pixels, got uint8"):
        array_to_image_fields(MONO8, "mono16")
    with pytest.raises(InputError, match="expected H x W or H x W x 3"):
        array_to_image_fields(np.zeros((2, 2, 4), np.uint8), "rgb8")
    assert set(OUTPUT_ENCODINGS) == {"mono8", "bgr8", "rgb8"}


@pytest.mark.parametrize("kind", MAKERS)
def test_stamps(kind):
    stamp = MAKERS[kind]().header.stamp
    stamp.sec, stamp.nanosec = 1_700_000_000, 250_000_001
    assert stamp_to_nanoseconds(stamp) == 1_700_000_000_250_000_001
    assert stamp_to_seconds(stamp) == pytest.approx(1_700_000_000.25, abs=1e-6)


# -- encodings of issue 13 item 6: float thermal, 4:2:2 YUV, Bayer -----------------------------------

cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless) converts YUV and Bayer")


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("encoding, dtype", [("32FC1", "f4"), ("64FC1", "f8")])
@pytest.mark.parametrize("is_bigendian", [0, 1])
def test_float_thermal_decodes_to_float32_values_as_sent(kind, encoding, dtype, is_bigendian):
    """Radiometric cameras: Kelvin (or Celsius) floats, NaN / inf kept for the preprocessing path's policy."""
    kelvin = np.array([[293.15, 310.5, np.nan], [-np.inf, 0.0, 1e4]], np.float64)
    order = ">" if is_bigendian else "<"
    payload = kelvin.astype(order + dtype).tobytes()
    msg = _set(MAKERS[kind](), 2, 3, encoding, 3 * int(dtype[1]), payload, is_bigendian=is_bigendian)
    out = image_msg_to_array(msg, THERMAL_ENCODINGS, "thermal")
    assert out.dtype == np.float32 and out.dtype.isnative and out.shape == (2, 3)
    np.testing.assert_array_equal(out, kelvin.astype(np.float32))  # NaN == NaN position-wise here


def test_float_thermal_with_padded_rows():
    values = RNG.normal(300.0, 5.0, (4, 5)).astype("<f4")
    row = values.tobytes()
    padded = b"".join(row[i * 20 : (i + 1) * 20] + b"\x00" * 4 for i in range(4))
    out = image_msg_to_array(_set(_rosbags_image(), 4, 5, "32FC1", 24, padded), THERMAL_ENCODINGS)
    np.testing.assert_array_equal(out, values)


def _yuv_of(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> BT.601 limited-range Y, U, V planes (float), the YUV OpenCV's 4:2:2 decoders expect."""
    r, g, b = (rgb[..., k].astype(np.float64) for k in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return np.stack([y, u, v], -1)


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("encoding", ["yuv422_yuy2", "yuyv", "uyvy", "yuv422"])
def test_yuv422_decodes_to_rgb(kind, encoding):
    """Each pixel pair shares U and V: pairs of equal colour come back as that colour (within rounding)."""
    colours = RNG.integers(30, 226, (3, 4, 3), dtype=np.uint8)
    rgb = np.repeat(colours, 2, axis=1)  # 3 x 8: equal horizontal pairs
    yuv = _yuv_of(rgb)
    y = np.rint(yuv[..., 0]).astype(np.uint8)
    u = np.rint(yuv[:, ::2, 1]).astype(np.uint8)
    v = np.rint(yuv[:, ::2, 2]).astype(np.uint8)
    packed = np.empty((3, 4, 4), np.uint8)  # per pixel pair: Y0 U Y1 V (YUY2) or U Y0 V Y1 (UYVY)
    if encoding in ("yuv422_yuy2", "yuyv"):
        packed[..., 0], packed[..., 1], packed[..., 2], packed[..., 3] = y[:, 0::2], u, y[:, 1::2], v
    else:
        packed[..., 0], packed[..., 1], packed[..., 2], packed[..., 3] = u, y[:, 0::2], v, y[:, 1::2]
    msg = _set(MAKERS[kind](), 3, 8, encoding, 16, packed.tobytes())
    out = image_msg_to_array(msg, RGB_ENCODINGS, "rgb")
    assert out.dtype == np.uint8 and out.shape == (3, 8, 3)
    assert np.abs(out.astype(int) - rgb).max() <= 3


def test_yuv422_needs_an_even_width():
    with pytest.raises(InputError, match="rgb: uyvy needs an even width"):
        image_msg_to_array(_set(_rosbags_image(), 1, 3, "uyvy", 6, bytes(6)), RGB_ENCODINGS, "rgb")


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_mosaic_of_a_flat_colour_demosaics_to_that_colour(kind, pattern):
    """A mosaic sampled from one flat colour with the named 2x2 pattern: every pixel comes back that colour.

    A wrong pattern would swap red and blue (or put green where red is): the check fails then.
    """
    colour = (200, 90, 30)  # R, G, B, all different
    index = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty((8, 10), np.uint8)
    for dy in range(2):
        for dx in range(2):
            mosaic[dy::2, dx::2] = colour[index[pattern[2 * dy + dx]]]
    msg = _set(MAKERS[kind](), 8, 10, f"bayer_{pattern}8", 10, mosaic.tobytes())
    out = image_msg_to_array(msg, RGB_ENCODINGS, "rgb")
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    inner = out[2:-2, 2:-2].reshape(-1, 3)
    assert np.abs(inner.astype(int) - np.array(colour)).max() <= 1, inner[:3]
