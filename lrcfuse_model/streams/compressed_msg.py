"""``sensor_msgs/CompressedImage`` <-> numpy, without ROS (image_transport's ``compressed`` convention).

Duck-typed like :mod:`lrcfuse_model.streams.image_msg` (rclpy messages and rosbags dataclasses).
``format`` is what compressed_image_transport writes: ``"<encoding>; jpeg compressed <coded>"`` or
``"<encoding>; png compressed"``; older publishers write only ``"jpeg"`` / ``"png"``.
compressed_depth_image_transport's ``"16UC1; compressedDepth png"`` carries a 12-byte header before
the PNG, skipped here (its inverse-depth quantisation, for 32FC1 depth, is not supported).

Decoding: OpenCV ``imdecode`` with the file's own depth and channels (8/16-bit gray, BGR, BGRA).
The encoding an image counts as for ``allowed`` is the one ``format`` names before ``;`` (the camera's
own), else what the decoded image is (``mono8``, ``mono16``, ``bgr8``); a colour image comes back RGB
(alpha dropped), gray as ``H x W``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..images.preprocess import InputError
from .pixels import data_bytes, import_cv2, swap_red_blue

COMPRESSED_FORMATS = ("jpeg", "png")
_DEPTH_HEADER_BYTES = 12  # compressed_depth_image_transport's ConfigHeader: format (int32) + 2 float32


def compressed_encoding(fmt: str, decoded: np.ndarray | None = None) -> str:
    """The camera encoding a CompressedImage ``format`` names (``"bgr8; jpeg compressed bgr8"`` -> bgr8).

    A bare ``"jpeg"`` / ``"png"`` names none: then the decoded image's (mono8, mono16 or bgr8), or ``""``.
    """
    head = fmt.split(";", 1)[0].strip()
    if ";" in fmt and head:
        return head
    if decoded is None:
        return ""
    if decoded.ndim == 2:
        return "mono16" if decoded.dtype == np.uint16 else "mono8"
    return "bgr8"


def compressed_msg_to_array(msg: Any, allowed: Sequence[str] | None = None, name: str = "image") -> np.ndarray:
    """A CompressedImage -> uint8/uint16 ``H x W`` or uint8 ``H x W x 3`` RGB; InputError naming ``name`` if not.

    ``allowed``: the encodings accepted (see :func:`compressed_encoding` for which one an image has).
    """
    fmt = str(msg.format)
    named = compressed_encoding(fmt)
    if named:
        _check_allowed(named, fmt, allowed, name)
    data = data_bytes(msg.data)
    if "compresseddepth" in fmt.lower():
        if "png" not in fmt.lower() or named not in ("16UC1", "mono16"):
            raise InputError(f"{name}: compressedDepth {fmt!r} is not supported; expected '16UC1; compressedDepth png'")
        data = data[_DEPTH_HEADER_BYTES:]
    if data.size == 0:
        raise InputError(f"{name}: compressed image ({fmt!r}) has no data")
    cv2 = import_cv2(f"{name}: a compressed image")
    decoded = cv2.imdecode(np.ascontiguousarray(data), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise InputError(
            f"{name}: could not decode the compressed image ({fmt!r}, {data.size} bytes); expected JPEG or PNG"
        )
    encoding = named or compressed_encoding(fmt, decoded)
    _check_allowed(encoding, fmt, allowed, name)
    if decoded.ndim == 2:
        return decoded
    if decoded.shape[2] == 1:
        return np.ascontiguousarray(decoded[:, :, 0])
    # imdecode gives BGR(A) whatever the camera's encoding was (compressed_image_transport codes rgb8 as bgr8)
    return swap_red_blue(decoded[:, :, :3])


def _check_allowed(encoding: str, fmt: str, allowed: Sequence[str] | None, name: str) -> None:
    if allowed is not None and encoding not in allowed:
        raise InputError(
            f"{name}: compressed {encoding!r} ({fmt!r}) is not supported here; expected one of {list(allowed)}"
        )


def array_to_compressed_fields(array: np.ndarray, codec: str = "jpeg", quality: int = 90) -> dict[str, Any]:
    """uint8 ``H x W`` or ``H x W x 3`` RGB -> ``format`` and ``data`` (bytes) of a CompressedImage.

    ``format`` as compressed_image_transport writes it (``"bgr8; jpeg compressed bgr8"``, ``"mono8; png
    compressed"``), so image_transport's republish, rqt and rviz decode it.
    """
    if codec not in COMPRESSED_FORMATS:
        raise InputError(f"compressed output: codec {codec!r} is not supported; expected one of {COMPRESSED_FORMATS}")
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise InputError(f"compressed output: expected uint8 H x W or H x W x 3, got {array.dtype} {array.shape}")
    cv2 = import_cv2("compressed output")
    encoding = "bgr8" if array.ndim == 3 else "mono8"
    pixels = swap_red_blue(array) if array.ndim == 3 else np.ascontiguousarray(array)
    if codec == "jpeg":
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        fmt = f"{encoding}; jpeg compressed {encoding}"
    else:
        ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        fmt = f"{encoding}; png compressed"
    if not ok:
        raise InputError(f"compressed output: OpenCV could not encode a {array.shape} image as {codec}")
    return {"format": fmt, "data": buf.tobytes()}


def fill_compressed_msg(msg: Any, array: np.ndarray, codec: str = "jpeg", quality: int = 90) -> Any:
    """Set ``format`` and ``data`` of ``msg`` (rclpy or rosbags CompressedImage); the header is the caller's."""
    fields = array_to_compressed_fields(array, codec, quality)
    if isinstance(getattr(msg, "data", None), np.ndarray):
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
    msg.format, msg.data = fields["format"], fields["data"]
    return msg
