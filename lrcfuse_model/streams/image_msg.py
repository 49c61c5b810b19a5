"""``sensor_msgs/Image`` <-> numpy, without ROS.

Duck-typed: works on rclpy's ``sensor_msgs.msg.Image`` (``data`` is an ``array.array``) and on the
dataclasses that ``rosbags`` deserialises (``data`` is a numpy uint8 array), so the ROS node and the
offline bag tool share one conversion. ``cv_bridge`` has no wheels; this module covers the
encodings the fusion node speaks:

* ``mono8`` -> uint8 ``H x W``; ``mono16`` / ``16UC1`` -> uint16 ``H x W`` (``is_bigendian`` honoured);
* ``rgb8`` / ``bgr8`` -> uint8 ``H x W x 3`` **RGB** (``rgba8`` / ``bgra8`` too, alpha dropped).

Rows may be padded (``step`` larger than ``width`` x bytes per pixel). A message whose step is too
small, whose data length is not ``step * height``, or whose encoding is unknown or not allowed is
rejected with an :class:`~lrcfuse_model.images.preprocess.InputError` naming the image and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..images.preprocess import InputError, rgb_to_ycbcr

THERMAL_ENCODINGS = ("mono8", "mono16", "16UC1")
RGB_ENCODINGS = ("bgr8", "rgb8", "mono8")
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
}
READABLE_ENCODINGS = tuple(_LAYOUTS)
WRITABLE_ENCODINGS = ("mono8", "mono16", "16UC1", "rgb8", "bgr8")


def stamp_to_seconds(stamp: Any) -> float:
    """``builtin_interfaces/Time`` (rclpy or rosbags) -> seconds as a float."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def stamp_to_nanoseconds(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds (exact, for bag timestamps)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _data_bytes(data: Any) -> np.ndarray:
    """The message payload as a flat uint8 array, without copying where the buffer allows."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=np.uint8).reshape(-1)  # a plain list of ints


def image_msg_to_array(msg: Any, allowed: Sequence[str] | None = None, name: str = "image") -> np.ndarray:
    """An Image message -> numpy: uint8/uint16 ``H x W`` or uint8 ``H x W x 3`` RGB.

    ``allowed`` restricts the accepted encodings (e.g. :data:`THERMAL_ENCODINGS`); ``name`` is used in
    error messages (e.g. the topic). The result may share memory with the message (read-only when
    the message holds ``bytes``); copy it before writing into it.
    """
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
    data = _data_bytes(msg.data)
    if data.size != step * height:
        raise InputError(
            f"{name}: data has {data.size} bytes, expected step x height = {step} x {height} = {step * height} "
            f"({encoding}, {width}x{height})"
        )
    rows = data.reshape(height, step)[:, :row_bytes]  # drops the row padding, if any
    if dtype.itemsize > 1:
        order = ">" if int(msg.is_bigendian) else "<"
        rows = np.ascontiguousarray(rows)
        pixels = rows.view(dtype.newbyteorder(order)).astype(dtype, copy=False)  # native byte order
    else:
        pixels = rows
    if channels == 1:
        return np.ascontiguousarray(pixels.reshape(height, width))
    pixels = pixels.reshape(height, width, channels)[:, :, :3]
    if encoding.startswith("bgr"):
        return _swap_red_blue(pixels)
    return np.ascontiguousarray(pixels)


def _swap_red_blue(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``H x W x 3`` (any strides) -> a new contiguous array with channels 0 and 2 swapped (BGR <-> RGB).

    Channel by channel: numpy copies each with a loop along the row, 4x faster than copying the
    ``[:, :, ::-1]`` view, whose innermost loop is three elements long.
    """
    out = np.empty(pixels.shape[:2] + (3,), pixels.dtype)
    for k in range(3):
        out[:, :, k] = pixels[:, :, 2 - k]
    return out


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
        pixels = _swap_red_blue(rgb) if encoding == "bgr8" else rgb
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
