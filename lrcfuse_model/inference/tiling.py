"""Tiled inference: any frame size through any backend with bounded memory, same result as the whole frame.

A network's working memory grows with the frame (LRCFuse: about 3 KB per pixel, 128-channel codes
at full resolution), so a 4K frame needs tens of GB in one piece. :class:`TiledBackend` wraps any
:class:`~lrcfuse_model.inference.backends.Backend` (PyTorch, ONNX Runtime, TensorRT) and cuts a frame
into tiles that overlap by the network's receptive field, so every output pixel is computed from
exactly the inputs it sees in the whole frame:

* **Receptive field, from the architecture.** :func:`tile_geometry` traces the PyTorch model
  (``torch.fx``, in :mod:`lrcfuse_model.inference.receptive_field`) and walks its graph: a stride-1
  "same" convolution adds ``dilation * (k // 2)`` pixels, element-wise operations take the largest
  of their inputs, a pooling by ``s`` moves to a grid of ``s``-pixel cells (tiles must then start on
  that grid), an upsampling back to pixels turns ``r`` cells into ``s * r + s // 2`` pixels
  (bilinear), explicit padding and cropping move the edge. An operation it does not know makes
  tiling refuse (:class:`TilingUnsupported`), never guess. LRCFuse (default sizes): 22 pixels.
  LRCFuse-RT: 15 cells of 8 pixels on its 1/8 code path, i.e. 124 pixels, rounded up to 128 so
  tiles stay on the pooling grid.
* **Why that suffices.** Near a tile's inner edge the reflect padding of each convolution differs
  from the real neighbours; the difference spreads one pixel (cell) per convolution, so pixels at
  least the receptive radius from every inner tile edge are exact. At the frame's own borders a tile
  edge is the frame edge and pads as the whole frame does. Tiles keep only their exact core.
* **Tile size from a memory budget.** Working memory per pixel of a tile = a backend's measured
  live factor (:data:`LIVE_FACTOR`, how many copies of the widest activation are alive at once at
  the peak, measured as peak RSS growth per pixel) x the widest activation's floats per input pixel
  (found in the same walk: 128 for LRCFuse, 4 for LRCFuse-RT) x 4 bytes. A frame within the budget
  runs whole; a larger one is cut into the fewest near-equal tiles whose area (margins included)
  fits. ``tile=N`` forces cores of N x N pixels instead.
* **Memory back after a big frame.** After a frame larger than the one before, freed memory is given
  back to the system (glibc ``malloc_trim``; ONNX Runtime's last run of that frame shrinks its CPU
  memory arena first): a process that saw one 4K frame returns near its baseline. Not after every
  frame: a stream of equal frames keeps its buffers (the fast path the allocator settings of
  :mod:`lrcfuse_model.malloc_tuning` are there for).

Exactness, stated: LRCFuse: tiled = whole frame up to float rounding at every size. LRCFuse-RT: the
same when the frame's width and height are multiples of its pooling scale (8); otherwise the whole
frame's bilinear upsampling stretches its coefficient maps by up to 7/8 of a cell across the frame,
which tiles (on the exact 1/8 grid) do not reproduce (measured bound in ``docs/deployment.md``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..malloc_tuning import malloc_tuned
from .receptive_field import TileGeometry, TilingUnsupported, tile_geometry

__all__ = [
    "LIVE_FACTOR", "MIN_CORE", "TILE_MODES", "Tile", "TileGeometry", "TiledBackend", "TilingUnsupported",
    "estimate_bytes_per_pixel", "format_bytes", "parse_memory", "parse_tile", "plan_tiles", "release_freed_memory",
    "tile_geometry", "tiled",
]  # fmt: skip

TILE_MODES = ("auto", "off")
MIN_CORE = 16  # smallest tile core (pixels) a budget may lead to: below it the overlap dominates

# Peak working memory of one frame / (4 bytes x the widest activation's floats per pixel), measured
# as peak RSS growth per pixel with LRCFuse (128-channel codes) at 256x256 and 512x512 (torch 2.13,
# onnxruntime 1.32, this 2-core CPU): ONNX Runtime 3.06 KB/px -> 6.0; PyTorch with glibc's default
# allocator 3.14 KB/px -> 6.1, with the tuned allocator (no mmap, no trim: freed blocks are kept and
# fragment) 5.59 / 6.15 KB/px -> 10.9 / 12.0. Rounded up by about 10 % so that the budget holds. TensorRT is not
# measured here (no GPU): ONNX Runtime's factor, for GPU memory. OpenVINO 2026.4 (export format 6): 3.69 KB/px at
# 256x256, 3.15 at 512x512 -> 7.2 (ONNX Runtime in the same run: 2.28 / 2.29 KB/px).
LIVE_FACTOR = {"onnxruntime": 6.6, "torch": 6.7, "torch-tuned": 13.2, "tensorrt": 6.6, "openvino": 7.9}

# How the backends say that an allocation failed (PyTorch's CPU allocator, ONNX Runtime's std::bad_alloc, CUDA).
_OUT_OF_MEMORY = ("can't allocate memory", "bad_alloc", "out of memory", "Cannot allocate memory", "Failed to allocate")


# -- options ---------------------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_memory(text: str | int | float) -> int:
    """``'2GB'`` / ``'512MB'`` / ``'1.5GiB'`` / bytes -> bytes; ``0`` = no budget (``'off'``, ``''`` too).

    KB/MB/GB are powers of 10 and KiB/MiB/GiB of 2 (the SI / IEC convention, as ``ulimit`` does not).
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower()
        if s in ("", "off", "none", "0"):
            return 0
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ki|mi|gi|[kmgt]?)(?:i?b)?", s)
        if not m:
            raise ValueError(f"max_memory: expected a size like 2GB, 512MB or 1.5GiB (0 = no budget), got {text!r}")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if value < 0:
        raise ValueError(f"max_memory: expected a size >= 0, got {text!r}")
    return int(value)


def parse_tile(text: str | int) -> str | int:
    """``'auto'`` | ``'off'`` | a core size in pixels (``'512'``, at least :data:`MIN_CORE`)."""
    s = str(text).strip().lower()
    if s in TILE_MODES:
        return s
    if s.isdigit() and int(s) >= MIN_CORE:
        return int(s)
    raise ValueError(f"tile: expected auto, off or a tile size in pixels >= {MIN_CORE}, got {text!r}")


def format_bytes(n: float) -> str:
    """Bytes as a short human size (``'2.0 GB'``)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


# -- memory given back -----------------------------------------------------------------------------


def _libc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``); False where unavailable."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


# -- tiles -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One tile: the region it reads (``read``) and the exact core it writes (``core``), both frame slices."""

    read: tuple[slice, slice]
    core: tuple[slice, slice]

    @property
    def inner(self) -> tuple[slice, slice]:
        """The core in the coordinates of the tile's output."""
        return tuple(  # type: ignore[return-value]
            slice(c.start - r.start, c.stop - r.start) for c, r in zip(self.core, self.read)
        )


def _cuts(length: int, core: int, align: int) -> list[int]:
    """Boundaries ``0 = c0 < c1 < ... = length`` of near-equal segments of at most ``core``, inner ones aligned."""
    core = max(core // align * align, align)
    if length <= core:
        return [0, length]
    n = -(-length // max(core - align + 1, 1))
    cuts = sorted({-(-(i * length // n) // align) * align for i in range(n)} | {length})
    return [c for c in cuts if c <= length]


def _reads(cuts: list[int], margin: int, align: int, length: int) -> list[slice]:
    """The region each segment of ``cuts`` reads: the segment plus ``margin`` each way, all of one size.

    One size: the tiles at the frame's edges read further inwards instead of less (which only adds
    exact context), so every tile allocates the same buffers and the allocator reuses them instead of
    fragmenting (glibc with the tuned settings otherwise grew by a tile per odd size), and ONNX Runtime
    and TensorRT see one shape. Where the shifted start would leave the pooling grid, the plain
    (smaller) region is read.
    """
    size = min(max(b - a for a, b in zip(cuts[:-1], cuts[1:])) + 2 * margin, length)
    reads = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        start = max(min(a - margin, length - size), 0)
        if start % align:
            reads.append(slice(max(a - margin, 0), min(b + margin, length)))
        else:
            reads.append(slice(start, start + size))
    return reads


def plan_tiles(height: int, width: int, core_hw: tuple[int, int], geometry: TileGeometry) -> list[Tile]:
    """Tiles covering ``height x width`` with cores of at most ``core_hw`` and at least ``geometry.margin``
    of overlap (reads of one size, see :func:`_reads`)."""
    m, align = geometry.margin, geometry.align
    ys, xs = _cuts(height, core_hw[0], align), _cuts(width, core_hw[1], align)
    read_ys, read_xs = _reads(ys, m, align, height), _reads(xs, m, align, width)
    tiles = []
    for y0, y1, ry in zip(ys[:-1], ys[1:], read_ys):
        for x0, x1, rx in zip(xs[:-1], xs[1:], read_xs):
            tiles.append(Tile(read=(ry, rx), core=(slice(y0, y1), slice(x0, x1))))
    return tiles


def estimate_bytes_per_pixel(geometry: TileGeometry, backend_name: str) -> float:
    """Estimated working memory per pixel of a tile on ``backend_name`` (see :data:`LIVE_FACTOR`)."""
    key = "torch-tuned" if backend_name == "torch" and malloc_tuned() else backend_name
    return LIVE_FACTOR.get(key, max(LIVE_FACTOR.values())) * geometry.floats_per_pixel * 4.0


class TiledBackend:
    """A backend that fuses a frame in tiles when it is too large for ``max_memory`` (or always, ``tile=N``).

    A :class:`lrcfuse_model.inference.backends.Backend` (registered there as one; not a subclass so that
    this module does not import the backends, which build it).

    ``tile``: ``'auto'`` (tiles only when the frame's estimated working memory exceeds
    ``max_memory``), ``'off'`` (whole frames; memory is still given back after a larger frame) or a
    core size in pixels. ``max_memory``: bytes (0 = no budget). ``geometry``: the network's (from
    :func:`tile_geometry`); ``None`` (an ONNX file or engine without its PyTorch model) allows only
    whole frames. ``bytes_per_pixel``: override of the estimate (measured elsewhere).
    """

    def __init__(
        self,
        inner: Any,
        geometry: TileGeometry | None,
        tile: str | int = "auto",
        max_memory: int = 0,
        bytes_per_pixel: float | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.inner = inner
        self.geometry = geometry
        self.tile = parse_tile(tile)
        self.max_memory = parse_memory(max_memory)
        if geometry is None and isinstance(self.tile, int):
            raise TilingUnsupported(
                f"tile={self.tile}: the receptive field of this model is unknown (an ONNX file or TensorRT engine "
                "given without its PyTorch weights); give the .pt weights, or tile auto / off"
            )
        if bytes_per_pixel is None and geometry is not None:
            bytes_per_pixel = estimate_bytes_per_pixel(geometry, inner.name)
        self.bytes_per_pixel = float(bytes_per_pixel or 0.0)
        self._log = log or (lambda message: None)
        self._last_pixels = 0
        self._logged: set[tuple[int, int]] = set()

    name = property(lambda self: self.inner.name)  # type: ignore[assignment]
    device = property(lambda self: self.inner.device)  # type: ignore[assignment]

    def __getattr__(self, attr: str) -> Any:  # the inner backend's facts (model, threads, session, engine ...)
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def _profile_limit(self) -> tuple[int, int] | None:
        """A TensorRT engine's largest frame (height, width): no tile may read more."""
        shapes = getattr(self.inner, "profile_shapes", None)
        if not shapes:
            return None
        high = shapes["ir"][2]
        return int(high[2]), int(high[3])

    def core_size(self, height: int, width: int) -> tuple[int, int] | None:
        """The largest tile core (height, width) for a ``height x width`` frame, or None for the whole frame."""
        if self.tile == "off" or self.geometry is None:
            return None
        m = self.geometry.margin
        limit = self._profile_limit()
        if isinstance(self.tile, int):
            core = (self.tile, self.tile)
        else:
            fits = not self.max_memory or height * width * self.bytes_per_pixel <= self.max_memory
            if fits and (limit is None or (height <= limit[0] and width <= limit[1])):
                return None
            core = self._budget_core(height, width) if self.max_memory else (height, width)
        if limit is not None:
            core = (min(core[0], limit[0] - 2 * m), min(core[1], limit[1] - 2 * m))
        if min(core) < MIN_CORE and (core[0] < height or core[1] < width):
            raise ValueError(
                f"tiles of {self.inner.name} on {self.inner.device} leave a core of {core[1]}x{core[0]} pixels "
                f"next to {m} pixels of overlap on each side (TensorRT profile {limit})"
            )
        return None if core[0] >= height and core[1] >= width else core

    def _budget_core(self, height: int, width: int) -> tuple[int, int]:
        m = self.geometry.margin  # type: ignore[union-attr]
        area = int(self.max_memory / self.bytes_per_pixel)  # pixels a tile may read, margins included
        side = math.isqrt(area)
        if height <= side:  # full-height strips
            core = (height, area // height - 2 * m)
        elif width <= side:
            core = (area // width - 2 * m, width)
        else:
            core = (side - 2 * m, side - 2 * m)
        if min(core) < MIN_CORE:
            smallest = (MIN_CORE + 2 * m) ** 2 * self.bytes_per_pixel
            raise ValueError(
                f"max_memory {format_bytes(self.max_memory)} is too small for this model on {self.inner.name}: "
                f"the smallest tile ({MIN_CORE} px plus {m} px of overlap on each side) needs about "
                f"{format_bytes(smallest)} ({self.bytes_per_pixel:.0f} bytes per pixel)"
            )
        return core

    def plan(self, height: int, width: int) -> list[Tile]:
        """The tiles of a ``height x width`` frame (one tile = the whole frame)."""
        core = self.core_size(height, width)
        if core is None:
            return [Tile(read=(slice(0, height), slice(0, width)), core=(slice(0, height), slice(0, width)))]
        return plan_tiles(height, width, core, self.geometry)  # type: ignore[arg-type]

    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        height, width = ir.shape[:2]
        tiles = self.plan(height, width)
        try:
            out = self._fuse_tiles(ir, vi_y, tiles)
        except Exception as exc:  # ONNX Runtime's errors are not RuntimeErrors: told apart by their message
            if not isinstance(exc, MemoryError) and not any(s in str(exc) for s in _OUT_OF_MEMORY):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MemoryError(
                f"a {width}x{height} frame ran out of memory on {self.inner.name} ({len(tiles)} tile(s), tile "
                f"{self.tile}, max_memory {format_bytes(self.max_memory) if self.max_memory else 'none'}): "
                f"{first[:200]}; use tile auto with a smaller max_memory"
            ) from None
        if height * width > self._last_pixels:
            release_freed_memory()  # a larger frame than the last (or the first): give its extra buffers back
        self._last_pixels = height * width
        return out

    def _fuse_tiles(self, ir: np.ndarray, vi_y: np.ndarray, tiles: list[Tile]) -> np.ndarray:
        height, width = ir.shape[:2]
        shrink = getattr(self.inner, "shrink_after_next_run", None)  # a runtime's own memory pool (ONNX Runtime)
        if shrink is not None and height * width > self._last_pixels:
            shrink_at = len(tiles) - 1  # its last run gives the pool's unused regions back, for the trim
        else:
            shrink_at = -1
        if len(tiles) == 1:
            if shrink_at == 0:
                shrink()
            out = self.inner.fuse(ir, vi_y)
        else:
            if (height, width) not in self._logged:
                self._logged.add((height, width))
                align = self.geometry.align  # type: ignore[union-attr]
                if height % align or width % align:
                    self._log(
                        f"tiling {width}x{height}: not a multiple of the model's pooling grid ({align}): the tiles "
                        "differ slightly from a whole-frame run (see lrcfuse_model.inference.tiling)"
                    )
                read = tiles[0].read
                self._log(
                    f"tiling {width}x{height} frames: {len(tiles)} tiles of up to "
                    f"{read[1].stop - read[1].start}x{read[0].stop - read[0].start} pixels, "
                    f"{self.geometry.margin} px overlap (max_memory {format_bytes(self.max_memory)}, "  # type: ignore[union-attr]
                    f"tile {self.tile})"
                )
            out = np.empty((height, width), np.float32)
            for i, t in enumerate(tiles):
                if i == shrink_at:
                    shrink()
                out[t.core] = self.inner.fuse(ir[t.read], vi_y[t.read])[t.inner]
        return out

    def __repr__(self) -> str:
        return f"TiledBackend({self.inner!r}, tile={self.tile!r}, max_memory={format_bytes(self.max_memory)})"

    def warmup(self, size_hw: tuple[int, int] = (512, 640), runs: int = 2) -> None:
        self.inner.warmup(size_hw, runs)


def tiled(
    backend: Any,
    model: nn.Module | None,
    tile: str | int = "auto",
    max_memory: str | int = "2GB",
    log: Callable[[str], None] | None = None,
) -> TiledBackend:
    """``backend`` wrapped in a :class:`TiledBackend` with ``model``'s geometry (``None``: whole frames only).

    A model whose receptive field cannot be bounded runs whole frames with ``tile='auto'`` (logged),
    and is an error with an explicit tile size.
    """
    geometry = None
    if model is not None:
        try:
            geometry = tile_geometry(model)
        except TilingUnsupported as exc:
            if parse_tile(tile) != "auto":
                raise
            (log or (lambda m: None))(f"tiling off: {exc}")
    if geometry is None and parse_tile(tile) == "auto":
        tile = "off"
    return TiledBackend(backend, geometry, tile, parse_memory(max_memory), log=log)
