"""``sensor_msgs/Image`` (and ``CompressedImage``) <-> numpy, without ROS.

Duck-typed: works on rclpy's ``sensor_msgs.msg.Image`` (``data`` is an ``array.array``) and on the
dataclasses that ``rosbags`` deserialises (``data`` is a numpy uint8 array), so the ROS node and the
offline bag tool share one conversion. ``cv_bridge`` has no wheels; this module covers the
encodings cameras publish:

* ``mono8`` -> uint8 ``H x W``; ``mono16`` / ``16UC1`` -> uint16 ``H x W`` (``is_bigendian`` honoured);
* ``32FC1`` / ``64FC1`` (radiometric thermal: Kelvin or Celsius) -> float32 ``H x W``, values as sent
  (NaN / inf included: normalising them is the preprocessing path's job, not the decoder's);
* ``rgb8`` / ``bgr8`` / ``rgba8`` / ``bgra8`` -> uint8 ``H x W x 3`` **RGB** (alpha dropped);
* ``yuv422_yuy2`` (``yuyv``) and ``uyvy`` (``yuv422``, ROS's older name for UYVY), 4:2:2 as USB
  cameras send it, and ``bayer_rggb8`` / ``bayer_bggr8`` / ``bayer_gbrg8`` / ``bayer_grbg8`` ->
  uint8 RGB, converted by OpenCV (``cvtColor``, bilinear demosaicing as ``cv_bridge`` does);
* a ``sensor_msgs/CompressedImage`` (a message with ``format`` and no ``encoding``): see
  :mod:`lrcfuse_model.streams.compressed_msg`.

Rows may be padded (``step`` larger than ``width`` x bytes per pixel). A message whose step is too
small, whose data length is not ``step * height``, or whose encoding is unknown or not allowed is
rejected with an :class:`~lrcfuse_model.images.preprocess.InputError` naming the image and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..images.preprocess import InputError, rgb_to_ycbcr
from .compressed_msg import compressed_msg_to_array
from .pixels import data_bytes, import_cv2, swap_red_blue

THERMAL_ENCODINGS = ("mono8", "mono16", "16UC1", "32FC1", "64FC1")
YUV422_ENCODINGS = ("yuv422_yuy2", "yuyv", "uyvy", "yuv422")
BAYER_ENCODINGS = ("bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8")
RGB_ENCODINGS = ("bgr8", "rgb8", "mono8", "rgba8", "bgra8", *YUV422_ENCODINGS, *BAYER_ENCODINGS)
OUTPUT_ENCODINGS = ("mono8", "bgr8", "rgb8")

# encoding -> (numpy dtype of one channel, channels); 16-bit byte order is set per message
_LAYOUTS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "32FC1": (np.dtype(np.float32), 1),
    "64FC1": (np.dtype(np.float64), 1),
    **{name: (np.dtype(np.uint8), 2) for name in YUV422_ENCODINGS},  # 2 bytes per pixel, 4 per pixel pair
    **{name: (np.dtype(np.uint8), 1) for name in BAYER_ENCODINGS},
}
# OpenCV conversion codes by name (resolved when used: cv2 is imported only for these encodings).
# OpenCV names a Bayer pattern by its second row's first two pixels (its 4.x names, kept in 5.x):
# ROS's RGGB is OpenCV's "BG", as in cv_bridge.
_CV_CODES = {
    "yuv422_yuy2": "COLOR_YUV2RGB_YUY2",
    "yuyv": "COLOR_YUV2RGB_YUY2",
    "uyvy": "COLOR_YUV2RGB_UYVY",
    "yuv422": "COLOR_YUV2RGB_UYVY",
    "bayer_rggb8": "COLOR_BayerBG2RGB",
    "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB",
    "bayer_grbg8": "COLOR_BayerGB2RGB",
}
READABLE_ENCODINGS = tuple(_LAYOUTS)
WRITABLE_ENCODINGS = ("mono8", "mono16", "16UC1", "rgb8", "bgr8")


def stamp_to_seconds(stamp: Any) -> float:
    """``builtin_interfaces/Time`` (rclpy or rosbags) -> seconds as a float."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def stamp_to_nanoseconds(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds (exact, for bag timestamps)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_msg_to_array(msg: Any, allowed: Sequence[str] | None = None, name: str = "image") -> np.ndarray:
    """An Image (or CompressedImage) message -> numpy: uint8/uint16/float32 ``H x W`` or uint8 ``H x W x 3`` RGB.

    ``allowed`` restricts the accepted encodings (e.g. :data:`THERMAL_ENCODINGS`); ``name`` is used in
    error messages (e.g. the topic). The result may share memory with the message (read-only when
    the message holds ``bytes``); copy it before writing into it.
    """
    if not hasattr(msg, "encoding") and hasattr(msg, "format"):  # sensor_msgs/CompressedImage
        return compressed_msg_to_array(msg, allowed, name)
    encoding = str(msg.encoding)
    accepted = tuple(allowed) if allowed is not None else READABLE_ENCODINGS
    if encoding not in accepted or encoding not in _LAYOUTS:
        readable = [e for e in accepted if e in _LAYOUTS]
        raise InputError(f"{name}: encoding {encoding!r} is not supported here; expected one of {readable}")
    dtype, channels = _LAYOUTS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InputError(f"{name}: empty image ({width}x{height}, width x height)")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InputError(
            f"{name}: step {step} is smaller than width {width} x {channels * dtype.itemsize} bytes per pixel "
            f"= {row_bytes} ({encoding})"
        )
    data = data_bytes(msg.data)
    if data.size != step * height:
        raise InputError(
            f"{name}: data has {data.size} bytes, expected step x height = {step} x {height} = {step * height} "
            f"({encoding}, {width}x{height})"
        )
    rows = data.reshape(height, step)[:, :row_bytes]  # drops the row padding, if any
    if encoding in _CV_CODES:
        return _convert_with_opencv(rows, encoding, height, width, name)
    if dtype.itemsize > 1:
        order = ">" if int(msg.is_bigendian) else "<"
        rows = np.ascontiguousarray(rows)
        pixels = rows.view(dtype.newbyteorder(order)).astype(dtype, copy=False)  # native byte order
    else:
        pixels = rows
    if dtype.kind == "f":  # 32FC1 / 64FC1: float32 for the preprocessing path (64-bit precision is not needed)
        return np.ascontiguousarray(pixels.reshape(height, width), dtype=np.float32)
    if channels == 1:
        return np.ascontiguousarray(pixels.reshape(height, width))
    pixels = pixels.reshape(height, width, channels)[:, :, :3]
    if encoding.startswith("bgr"):
        return swap_red_blue(pixels)
    return np.ascontiguousarray(pixels)


def _convert_with_opencv(rows: np.ndarray, encoding: str, height: int, width: int, name: str) -> np.ndarray:
    """4:2:2 YUV or a Bayer mosaic (uint8 rows without padding) -> uint8 ``H x W x 3`` RGB, by OpenCV."""
    if encoding in YUV422_ENCODINGS and width % 2:
        raise InputError(f"{name}: {encoding} needs an even width (two pixels share U and V), got {width}")
    cv2 = import_cv2(f"{name}: encoding {encoding!r}")
    channels = 2 if encoding in YUV422_ENCODINGS else 1
    src = np.ascontiguousarray(rows).reshape(height, width, channels) if channels > 1 else np.ascontiguousarray(rows)
    return cv2.cvtColor(src, getattr(cv2, _CV_CODES[encoding]))


def _luma_u8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> uint8 full-range BT.601 luma, the Y that preprocess fuses."""
    y = rgb_to_ycbcr(rgb.astype(np.float32) / 255.0)[..., 0]
    return (np.clip(y, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict[str, Any]:
    """numpy -> the fields of an Image message (without ``header``), ``data`` as ``bytes``.

    ``mono8``: uint8 ``H x W`` (an RGB array is reduced to its BT.601 luma). ``mono16`` / ``16UC1``:
    uint16 ``H x W``, written little-endian. ``rgb8`` / ``bgr8``: uint8 ``H x W x 3`` given in RGB
    order (a gray ``H x W`` array is repeated on the three channels).
    """
    if encoding not in WRITABLE_ENCODINGS:
        raise InputError(f"output encoding {encoding!r} is not supported; expected one of {list(WRITABLE_ENCODINGS)}")
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise InputError(f"{encoding} image: expected H x W or H x W x 3, got shape {array.shape}")
    want = np.uint16 if encoding in ("mono16", "16UC1") else np.uint8
    if array.dtype != want:
        raise InputError(f"{encoding} image: expected {np.dtype(want).name} pixels, got {array.dtype}")
    if encoding in ("mono16", "16UC1"):
        if array.ndim != 2:
            raise InputError(f"{encoding} image: expected H x W, got shape {array.shape}")
        pixels = array.astype("<u2", copy=False)
    elif encoding == "mono8":
        pixels = _luma_u8(array) if array.ndim == 3 else array
    else:
        rgb = array if array.ndim == 3 else np.repeat(array[:, :, None], 3, axis=2)
        pixels = swap_red_blue(rgb) if encoding == "bgr8" else rgb
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": pixels.nbytes // height,
        "data": pixels.tobytes(),
    }


def fill_image_msg(msg: Any, array: np.ndarray, encoding: str) -> Any:
    """Set the image fields of ``msg`` (rclpy Image or rosbags Image) from ``array``; returns ``msg``.

    The header is left to the caller (the fused image carries the visible camera's header).
    """
    fields = array_to_image_fields(array, encoding)
    if isinstance(getattr(msg, "data", None), np.ndarray):  # rosbags messages hold numpy uint8 arrays
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg
