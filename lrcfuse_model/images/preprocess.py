"""The one preprocessing path: image files / arrays -> network inputs -> output image.

Used by the CLI, the training data, the ROS node and every inference backend, so that an image
is prepared the same way wherever it is fused.

* Thermal: 2-D uint8 / uint16 / float32 / float64 arrays; an RGB thermal image (TNO stores R=G=B)
  is reduced to one channel. 16-bit and float (radiometric: raw counts, or temperatures such as a
  TIFF in Kelvin, 290..310) images are normalised robustly, never by a plain /65535 or a clip to
  [0, 1]: ``percentile`` (default: clip to the 1st..99th percentile, then stretch), ``fixed`` (a
  known raw range, e.g. 290 310 K), ``minmax`` or ``none`` (/ dtype max; a float image must then
  hold values in [0, 1] already, else it is an error). 8-bit images are display-scaled already and
  are divided by 255 unless ``normalize_8bit`` asks for the same treatment. NaN / inf pixels are an
  error naming the image and how many there are: no temperature is guessed for them (a dead pixel
  or a masked region would become the coldest or hottest value and shift the stretch), so a caller
  that has such frames fills them with a value of its choice first. ``thermal_percentiles`` must be
  two numbers 0 <= LOW < HIGH <= 100, ``thermal_range`` two finite numbers LOW < HIGH: anything
  else is a :class:`~lrcfuse_model.config.ConfigError`, not a flat image.
* Visible: gray or RGB. RGB goes through full-range BT.601 YCbCr (as in JPEG / OpenCV and the
  fusion literature, e.g. RefineFuse): Y is fused, Cb and Cr come back unchanged. An RGB image
  whose three channels are equal (TNO's visible images) is treated as gray, so it fuses to gray.
* Alignment: cameras that are not pixel-aligned give a 3 x 3 homography (``data.homography``, 9
  numbers row-major, or ``data.homography_file``: .yaml / .json / .txt) mapping THERMAL pixel
  coordinates to VISIBLE pixel coordinates, in OpenCV's convention (x right, y down, the centre of
  the top-left pixel at (0, 0): what ``cv2.findHomography(thermal_points, visible_points)`` gives).
  The normalised thermal image is warped (bilinear) into the visible frame, at the visible size;
  visible pixels that no thermal pixel covers become 0 (cold). The parsed matrix is cached, so a
  homography file is read once per process.
* Sizes: without a homography the two images must have the same size. ``size_mismatch`` is the
  resize policy when they differ: ``error`` (default) rejects the pair naming both sizes,
  ``resize_ir`` resizes the thermal image (bilinear) to the visible size.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

from ..config import ConfigError

THERMAL_NORMS = ("percentile", "fixed", "minmax", "none")
SIZE_MISMATCH_POLICIES = ("error", "resize_ir")
TIFF = (".tif", ".tiff")


class InputError(ValueError):
    """An input image that cannot be fused, with a message naming it and what was expected."""


def describe_error(exc: BaseException) -> str:
    """The message a batch job records for a failed item (unexpected errors keep their type name)."""
    return str(exc) if isinstance(exc, (InputError, OSError, ValueError)) else f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=1)
def _data_defaults() -> tuple[tuple[str, Any], ...]:
    from ..config import load_defaults

    return tuple(load_defaults()["data"].items())


def data_settings(data_cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``data`` config section: packaged defaults (read once) updated with ``data_cfg``, checked
    (:func:`check_thermal_settings`, ``size_mismatch``): a :class:`ConfigError` names a bad value."""
    cfg = copy.deepcopy(dict(_data_defaults()))  # the cached lists stay unshared
    if data_cfg:
        cfg.update(data_cfg)
    check_thermal_settings(cfg["thermal_norm"], cfg["thermal_percentiles"], cfg["thermal_range"])
    if cfg["size_mismatch"] not in SIZE_MISMATCH_POLICIES:
        raise ConfigError(
            f"data.size_mismatch: expected one of {', '.join(SIZE_MISMATCH_POLICIES)}, got {cfg['size_mismatch']!r}"
        )
    return cfg


def _two_numbers(value: Any, key: str, example: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"data.{key}: expected two numbers LOW HIGH (e.g. {example}), got {value!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ConfigError(f"data.{key}: expected two finite numbers LOW HIGH, got {[low, high]}")
    return low, high


def check_thermal_settings(
    mode: str, percentiles: Any = (1.0, 99.0), fixed_range: Any = (0.0, 65535.0)
) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(percentiles, fixed_range)`` as float pairs, or a :class:`ConfigError` naming the setting.

    Both pairs are checked whatever the mode: an inverted or single value is a mistake even where
    the mode ignores it, and would silently flatten the thermal image (every pixel 0.5) where not.
    """
    if mode not in THERMAL_NORMS:
        raise InputError(f"thermal_norm must be one of {THERMAL_NORMS}, got {mode!r}")
    q = _two_numbers(percentiles, "thermal_percentiles", "1 99")
    if not 0.0 <= q[0] < q[1] <= 100.0:
        raise ConfigError(f"data.thermal_percentiles: expected 0 <= LOW < HIGH <= 100 (e.g. 1 99), got {list(q)}")
    r = _two_numbers(fixed_range, "thermal_range", "290 310")
    if not r[0] < r[1]:
        raise ConfigError(f"data.thermal_range: expected LOW < HIGH (e.g. 290 310), got {list(r)}")
    return q, r


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8/uint16/float32 ``H x W`` or uint8 ``H x W x 3`` (RGB)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16)
            if im.mode == "I":
                arr = np.asarray(im)
                if arr.min() < 0 or arr.max() > 65535:
                    raise InputError(f"{path}: 32-bit integer image out of the 16-bit range")
                return arr.astype(np.uint16)
            if im.mode == "L":
                return np.asarray(im, dtype=np.uint8)
            if im.mode == "F":  # 32-bit float (radiometric TIFF): values as stored, normalised later
                return np.asarray(im, dtype=np.float32)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        float_tiff = _read_float_tiff(path) if path.suffix.lower() in TIFF else None
        if float_tiff is not None:
            return float_tiff
        raise InputError(f"{path}: not a readable image ({exc})") from exc


def _read_float_tiff(path: Path) -> np.ndarray | None:
    """A one-channel float64 (or float32) TIFF through OpenCV, which PIL cannot open; ``None`` if it is not one."""
    try:
        import cv2
    except ImportError:
        return None
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 2 or arr.dtype not in (np.float32, np.float64):
        return None
    return arr


def to_single_channel(img: np.ndarray, name: str = "image") -> np.ndarray:
    """A 2-D view of ``img``: gray as is, an RGB image with equal channels -> one channel."""
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 3:
        if np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 0], img[:, :, 2]):
            return img[:, :, 0]
        return img
    raise InputError(f"{name}: expected H x W or H x W x 3, got shape {img.shape}")


def _check_finite(x: np.ndarray, name: str) -> None:
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        nan = int(np.isnan(x).sum())
        inf = x.size - nan - int(np.isfinite(x).sum())
        raise InputError(
            f"{name}: contains NaN or infinite values ({nan} NaN, {inf} inf of {x.size} pixels); "
            "no value is guessed for them: fill them (e.g. with the frame's lowest valid value) before fusing"
        )


def normalize_thermal(
    ir: np.ndarray,
    mode: str = "percentile",
    percentiles: tuple[float, float] | list[float] = (1.0, 99.0),
    fixed_range: tuple[float, float] | list[float] = (0.0, 65535.0),
    normalize_8bit: bool = False,
    name: str = "thermal image",
) -> np.ndarray:
    """Thermal array -> float32 ``H x W`` in [0, 1] (see the module docstring for the modes)."""
    percentiles, fixed_range = check_thermal_settings(mode, percentiles, fixed_range)
    ir = to_single_channel(ir, name)
    if ir.ndim != 2:
        # A colour-mapped thermal image cannot be turned back into temperatures reliably.
        ir = np.asarray(Image.fromarray(ir).convert("L"))
    _check_finite(ir, name)
    if ir.dtype == np.uint8 and not normalize_8bit:
        return ir.astype(np.float32) / 255.0
    if mode == "none":
        if np.issubdtype(ir.dtype, np.floating) and ir.size and (ir.min() < 0.0 or ir.max() > 1.0):
            raise InputError(
                f"{name}: float values {float(ir.min()):g}..{float(ir.max()):g} are not in [0, 1], which "
                "thermal_norm none needs for a float image; use percentile, fixed (with thermal_range) or minmax"
            )
        scale = 255.0 if ir.dtype == np.uint8 else 65535.0 if ir.dtype == np.uint16 else 1.0
        return np.clip(ir.astype(np.float32) / scale, 0.0, 1.0)
    # 8/16-bit frames (what cameras send) take a histogram and a look-up table per grey level instead
    # of a partition and float64 passes over every pixel: the same numbers, 4-5x faster.
    levels = 1 << (8 * ir.dtype.itemsize) if ir.dtype in (np.uint8, np.uint16) else 0
    x = np.arange(levels, dtype=np.float32) if levels else ir.astype(np.float32)
    if mode == "percentile":
        if levels:
            lo, hi = _integer_percentiles(ir, levels, list(percentiles))
        else:
            lo, hi = np.percentile(x, list(percentiles))
    elif mode == "fixed":
        lo, hi = fixed_range
    else:
        lo, hi = (float(ir.min()), float(ir.max())) if levels else (float(x.min()), float(x.max()))
    if hi <= lo:  # a flat frame (lens cap, NUC) fuses as mid-gray instead of dividing by zero
        return np.full(ir.shape, 0.5, dtype=np.float32)
    out = np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return out[ir] if levels else out  # levels: ``out`` is the table, one entry per grey level


def _integer_percentiles(ir: np.ndarray, levels: int, q: list[float]) -> np.ndarray:
    """``np.percentile(ir.astype(np.float32), q)`` (method linear) of a uint8 / uint16 image, bit for bit,
    from the cumulative histogram (the order statistics) and numpy's interpolation steps."""
    cumulative = np.cumsum(np.bincount(ir.ravel(), minlength=levels))
    n = ir.size
    virtual = (n - 1) * np.true_divide(q, 100)  # float64, as np.percentile
    previous = np.floor(virtual)
    previous[virtual >= n - 1] = -1  # numpy's convention: the last value (gamma then does not matter)
    previous[virtual < 0] = 0
    previous = previous.astype(np.intp)
    following = np.where(previous == -1, -1, previous + 1)
    gamma = virtual - previous

    def order_statistic(k: np.ndarray) -> np.ndarray:  # the k-th smallest value (k = -1: the largest)
        k = np.where(k < 0, n - 1, k)
        return np.searchsorted(cumulative, k, side="right").astype(np.float32)

    a, b = order_statistic(previous), order_statistic(following)
    diff = b - a  # numpy's _lerp: a + diff * gamma, or b - diff * (1 - gamma) where gamma >= 0.5
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe", dtype=np.float64)
    return out


def thermal_to_float(
    ir: np.ndarray, data_cfg: Mapping[str, Any] | None = None, name: str = "thermal image"
) -> np.ndarray:
    """:func:`normalize_thermal` with the settings of the ``data`` config section."""
    cfg = data_settings(data_cfg)
    return normalize_thermal(
        ir, cfg["thermal_norm"], cfg["thermal_percentiles"], cfg["thermal_range"], cfg["normalize_8bit"], name
    )


# Full-range BT.601 (JPEG) YCbCr, on [0, 1] values with chroma centred on 0.5.
_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCC2RGB = np.linalg.inv(_RGB2YCC).astype(np.float32)
# The conversions run channel by channel on contiguous planes (one matrix row: a * k0 + b * k1 + c * k2,
# then the offset), in float32 like the matrix product over interleaved H x W x 3 pixels they replace,
# whose offsets and clipping ran numpy's inner loops two or three elements long: a 640x512 colour pair's
# prepare + finish went from ~11 ms to ~3.5 ms here (benchmarks/preprocess_bench.py), outputs within
# one grey level (about one value in 10^6 differs).


def _mix(channels: tuple[np.ndarray, ...], row: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """``out = channels[0] * row[0] + channels[1] * row[1] + channels[2] * row[2]`` (one matrix row)."""
    np.multiply(channels[0], row[0], out=out)
    for channel, k in zip(channels[1:], row[1:]):
        np.multiply(channel, k, out=tmp)
        out += tmp


def _ycbcr_planes(rgb: np.ndarray) -> np.ndarray:
    """Float RGB ``... x 3`` -> YCbCr as three planes ``3 x ...`` (Cb, Cr centred on 0.5)."""
    dtype = np.result_type(rgb.dtype, np.float32)
    channels = (rgb[..., 0], rgb[..., 1], rgb[..., 2])
    planes = np.empty((3, *rgb.shape[:-1]), dtype)
    tmp = np.empty(rgb.shape[:-1], dtype)
    for i in range(3):
        _mix(channels, _RGB2YCC[i], planes[i], tmp)
    planes[1:] += dtype.type(0.5)
    return planes


def _rgb_planes(y: np.ndarray, cbcr: np.ndarray) -> np.ndarray:
    """Y ``...`` + Cb, Cr ``... x 2`` (centred on 0.5) -> RGB as three planes ``3 x ...``, clipped to [0, 1]."""
    dtype = np.result_type(y.dtype, cbcr.dtype, np.float32)
    half = dtype.type(0.5)
    channels = (y, np.subtract(cbcr[..., 0], half, dtype=dtype), np.subtract(cbcr[..., 1], half, dtype=dtype))
    planes = np.empty((3, *y.shape), dtype)
    tmp = np.empty(y.shape, dtype)
    for i in range(3):
        _mix(channels, _YCC2RGB[i], planes[i], tmp)
    return np.clip(planes, 0.0, 1.0, out=planes)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Float RGB ``H x W x 3`` in [0, 1] -> YCbCr in [0, 1] (Cb, Cr centred on 0.5).

    The result is ``H x W x 3`` over three contiguous planes: ``[..., 0]`` (Y) is a contiguous image.
    """
    return np.moveaxis(_ycbcr_planes(np.asarray(rgb)), 0, -1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, clipped to [0, 1] (``H x W x 3`` over three planes)."""
    ycc = np.asarray(ycc)
    return np.moveaxis(_rgb_planes(ycc[..., 0], ycc[..., 1:]), 0, -1)


def visible_to_float(vi: np.ndarray, name: str = "visible image") -> np.ndarray:
    """Visible array -> float32 in [0, 1]: ``H x W`` (gray, or RGB with equal channels) or ``H x W x 3``.

    A colour result is ``H x W x 3`` over three contiguous planes (what the YCbCr conversion reads).
    """
    vi = to_single_channel(vi, name)
    _check_finite(vi, name)
    if vi.ndim == 2:
        return _channel_to_float(vi)
    planes = np.empty((vi.shape[2], *vi.shape[:2]), np.float32)
    for k in range(vi.shape[2]):
        _channel_to_float(vi[..., k], out=planes[k])
    return np.moveaxis(planes, 0, -1)


def _channel_to_float(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 / 255, uint16 / 65535, float clipped to [0, 1]: float32."""
    if x.dtype == np.uint8:
        return np.divide(x, np.float32(255.0), out=out, dtype=np.float32)
    if x.dtype == np.uint16:
        return np.divide(x, np.float32(65535.0), out=out, dtype=np.float32)
    return np.clip(x.astype(np.float32), 0.0, 1.0, out=out)


@dataclass
class PreparedPair:
    """Network inputs (``ir``, ``vi_y``: float32 ``H x W`` in [0, 1]) and what the output needs."""

    ir: np.ndarray
    vi_y: np.ndarray
    cbcr: np.ndarray | None  # H x W x 2 for a colour visible image, else None

    @property
    def shape(self) -> tuple[int, int]:
        return self.vi_y.shape  # type: ignore[return-value]


def resize_float(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    h, w = size_hw
    return np.array(Image.fromarray(img.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR), np.float32)


HOMOGRAPHY_FILE_KEYS = ("homography", "H", "matrix", "data")


def parse_homography(value: Any, source: str = "data.homography") -> np.ndarray:
    """9 numbers (flat, row-major) or a 3 x 3 nested list -> validated float64 3 x 3 matrix.

    Raises :class:`~lrcfuse_model.config.ConfigError` naming ``source`` for a wrong shape, a value
    that is not a number, a non-finite or a singular matrix.
    """
    if isinstance(value, Mapping):  # {homography: ...} or ROS / OpenCV style {rows: 3, cols: 3, data: [...]}
        key = next((k for k in HOMOGRAPHY_FILE_KEYS if k in value), None)
        if key is None:
            raise ConfigError(f"{source}: expected a 3x3 matrix or one of the keys {list(HOMOGRAPHY_FILE_KEYS)}")
        value = value[key]
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: expected 9 numbers (a 3x3 matrix, row-major), got {value!r}") from exc
    if matrix.size != 9 or matrix.ndim not in (1, 2) or (matrix.ndim == 2 and matrix.shape != (3, 3)):
        raise ConfigError(
            f"{source}: expected 9 numbers (a 3x3 matrix, row-major), got {matrix.size} in shape {matrix.shape}"
        )
    matrix = matrix.reshape(3, 3)
    if not np.isfinite(matrix).all():
        raise ConfigError(f"{source}: the homography contains NaN or infinite values")
    # Invertible means: an inverse exists and really inverts it. A determinant test on the scaled
    # matrix would call a large translation (whose determinant is 1) singular; such a matrix is valid,
    # and whether it leaves the thermal image anywhere in the visible frame is checked per frame size.
    try:
        inverse = np.linalg.inv(matrix)
        exact = np.isfinite(inverse).all() and np.abs(matrix @ inverse - np.eye(3)).max() < 1e-6
    except np.linalg.LinAlgError:
        exact = False
    if not exact:
        raise ConfigError(f"{source}: the homography {matrix.tolist()} is singular (it cannot be inverted)")
    return matrix


def read_homography_file(path: str | Path) -> np.ndarray:
    """A homography file -> 3 x 3 matrix: .json / .yaml / .yml (a list, nested lists or a mapping
    with ``homography`` / ``H`` / ``matrix`` / ``data``), anything else 9 numbers as text."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data.homography_file: {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            value = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            value = yaml.safe_load(text)
        else:
            lines = [line.split("#", 1)[0] for line in text.splitlines()]
            value = [float(token) for token in re.split(r"[\s,;\[\]]+", " ".join(lines)) if token]
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"data.homography_file: {path} is not a readable homography ({exc})") from exc
    return parse_homography(value, f"data.homography_file {path}")


@functools.lru_cache(maxsize=8)
def _homography_cached(values: tuple[Any, ...], file: str) -> np.ndarray | None:
    if values and file:
        raise ConfigError("set either data.homography or data.homography_file, not both")
    if file:
        matrix = read_homography_file(file)
    elif values:
        matrix = parse_homography(list(values))
    else:
        return None
    matrix.setflags(write=False)  # shared by every caller of the cache
    return matrix


def load_homography(data_cfg: Mapping[str, Any] | None = None) -> np.ndarray | None:
    """The thermal -> visible homography of the ``data`` config section (``None``: aligned cameras).

    Parsed once per distinct setting (the file is not re-read per frame); call it at start-up to
    reject a bad setting before the first frame.
    """
    return _homography_of(data_settings(data_cfg))


def _homography_of(settings: Mapping[str, Any]) -> np.ndarray | None:
    """:func:`load_homography` on an already resolved ``data`` section (the per-frame path)."""
    values = settings.get("homography") or []
    flat = tuple(tuple(row) if isinstance(row, (list, tuple)) else row for row in values)
    return _homography_cached(flat, str(settings.get("homography_file") or ""))


# Pixel centres at integers (OpenCV) <-> at half-integers (PIL's transform samples pixel centres).
_HALF_PIXEL = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_MINUS_HALF_PIXEL = np.linalg.inv(_HALF_PIXEL)


def warp_thermal(
    ir: np.ndarray,
    homography: np.ndarray,
    size_hw: tuple[int, int],
    names: tuple[str, str] = ("thermal image", "visible image"),
) -> np.ndarray:
    """Warp a float thermal image into the visible frame (``size_hw``) with a thermal -> visible
    homography; bilinear, and 0 where no thermal pixel lands."""
    h, w = size_hw
    ih, iw = ir.shape
    corners = np.array([[0, 0, 1], [iw - 1, 0, 1], [0, ih - 1, 1], [iw - 1, ih - 1, 1]], np.float64).T
    mapped = homography @ corners
    if (mapped[2] > 0).all():  # all four corners in front: a cheap check that the images overlap at all
        x, y = mapped[0] / mapped[2], mapped[1] / mapped[2]
        if (x < -0.5).all() or (x > w - 0.5).all() or (y < -0.5).all() or (y > h - 0.5).all():
            raise InputError(
                f"{names[0]}: the homography maps the {iw}x{ih} thermal image entirely outside the "
                f"{w}x{h} frame of {names[1]}; check data.homography (thermal -> visible pixel coordinates)"
            )
    # PIL maps each output (visible) pixel back to the input: the inverse, in PIL's pixel convention.
    inverse = _HALF_PIXEL @ np.linalg.inv(homography) @ _MINUS_HALF_PIXEL
    if abs(inverse[2, 2]) < 1e-12 * np.abs(inverse).max():
        raise InputError(f"{names[0]}: the homography sends the visible image's corner to infinity")
    coeffs = tuple((inverse / inverse[2, 2]).ravel()[:8])
    warped = Image.fromarray(np.ascontiguousarray(ir, dtype=np.float32), mode="F").transform(
        (w, h), Image.PERSPECTIVE, coeffs, Image.BILINEAR
    )
    return np.asarray(warped, dtype=np.float32)


def prepare_pair(
    ir: np.ndarray,
    vi: np.ndarray,
    data_cfg: Mapping[str, Any] | None = None,
    names: tuple[str, str] = ("thermal image", "visible image"),
) -> PreparedPair:
    """Thermal + visible arrays -> :class:`PreparedPair`, per the ``data`` config section.

    The thermal image is normalised on its own full frame, then warped into the visible frame when
    a homography is set, then (sizes still differing) rejected or resized per ``size_mismatch``.
    """
    cfg = data_settings(data_cfg)
    ir_f = thermal_to_float(np.asarray(ir), cfg, names[0])
    vi_f = visible_to_float(np.asarray(vi), names[1])
    cbcr = None
    if vi_f.ndim == 3:
        planes = _ycbcr_planes(vi_f)
        vi_y, cbcr = planes[0], np.moveaxis(planes[1:], 0, -1)  # contiguous Y; Cb, Cr as H x W x 2 of two planes
    else:
        vi_y = vi_f
    homography = _homography_of(cfg)
    if homography is not None:
        ir_f = warp_thermal(ir_f, homography, vi_y.shape, names)
    if ir_f.shape != vi_y.shape:
        if cfg["size_mismatch"] == "resize_ir":
            ir_f = resize_float(ir_f, vi_y.shape)
        else:
            raise InputError(
                f"{names[0]} is {ir_f.shape[1]}x{ir_f.shape[0]} but {names[1]} is {vi_y.shape[1]}x{vi_y.shape[0]} "
                "(width x height); register the cameras (homography), or resize the thermal image with "
                "size_mismatch: resize_ir (lrcfuse: --size-mismatch resize_ir; node: -p size_mismatch:=resize_ir)"
            )
    if min(vi_y.shape) < 2:
        raise InputError(f"{names[1]}: {vi_y.shape[1]}x{vi_y.shape[0]} is too small (at least 2x2 pixels)")
    return PreparedPair(ir=np.ascontiguousarray(ir_f), vi_y=vi_y, cbcr=cbcr)


def finish(fused_y: np.ndarray, pair: PreparedPair) -> np.ndarray:
    """Fused Y (float ``H x W``) -> uint8 gray, or uint8 RGB with the visible image's chroma."""
    # clipped to [0, 1] with NaN -> 0 (fmax / fmin return the number of a NaN pair), into our own copy
    y = np.fmax(fused_y, 0.0, dtype=np.result_type(fused_y, np.float32))
    np.fmin(y, 1.0, out=y)
    if pair.cbcr is None:
        return _to_uint8(y)
    planes = _rgb_planes(y, pair.cbcr)
    out = np.empty((*y.shape, 3), np.uint8)
    for i in range(3):  # plane by plane into the interleaved image: long inner loops
        out[..., i] = _to_uint8(planes[i])
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, rounding half up (``x`` is scaled in place)."""
    x *= x.dtype.type(255.0)
    x += x.dtype.type(0.5)
    return x.astype(np.uint8)
