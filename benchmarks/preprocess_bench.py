"""Pre/post-processing per frame: the one preprocessing path against the matrix-product math it replaced.

    .venv/bin/python benchmarks/preprocess_bench.py                  # 640x512, the bundled colour samples
    .venv/bin/python benchmarks/preprocess_bench.py --size 1280x1024 --rounds 60
    .venv/bin/python benchmarks/preprocess_bench.py --default-malloc  # glibc's default allocator

``prepare`` is :func:`prepare_pair` on an 8-bit thermal + colour pair (thermal normalisation, visible to
float, YCbCr); ``finish`` is :func:`finish` to uint8 RGB with the visible chroma; ``finish gray`` the
mono output; ``thermal 16b`` :func:`normalize_thermal` of a 16-bit frame (percentile mode). "old" is
the previous implementation, kept here only as the reference: ``rgb @ matrix`` over ``H x W x 3``
float32 with 0.5 added to the interleaved chroma channels, and for 16-bit thermal np.percentile and
float64 passes over every pixel (now a histogram and a look-up table per grey level); the rest of the
path (visible to float, size checks) is shared. Old and new run alternately in rounds in one process,
so load drift on a shared machine hits both alike: each line gives the median ms and the median of
the per-round old/new ratios. The outputs are compared too (largest difference, share of differing
pixels).

Like the ROS node and the ``lrcfuse`` command, the script restarts itself once with the tuned glibc
allocator (:mod:`lrcfuse_model.malloc_tuning`) unless ``--default-malloc`` is given; with the default
allocator every fresh 640x512 float buffer is page-faulted in again, which costs more than the
arithmetic.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lrcfuse_model.images.preprocess import (  # noqa: E402
    PreparedPair,
    data_settings,
    finish,
    normalize_thermal,
    prepare_pair,
    read_image,
    thermal_to_float,
    visible_to_float,
)

# -- the previous implementation (reference only) -------------------------------------------------

_OLD_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_OLD_YCC2RGB = np.linalg.inv(_OLD_RGB2YCC).astype(np.float32)


def old_prepare_pair(ir: np.ndarray, vi: np.ndarray) -> PreparedPair:
    """prepare_pair as it was, for aligned cameras of one size (what this benchmark feeds it)."""
    cfg = data_settings(None)
    ir_f = thermal_to_float(ir, cfg)
    vi_f = visible_to_float(vi)
    cbcr = None
    if vi_f.ndim == 3:
        ycc = vi_f @ _OLD_RGB2YCC.T
        ycc[..., 1:] += 0.5
        vi_y, cbcr = np.ascontiguousarray(ycc[..., 0]), ycc[..., 1:]
    else:
        vi_y = vi_f
    return PreparedPair(ir=np.ascontiguousarray(ir_f), vi_y=vi_y, cbcr=cbcr)


def old_normalize_thermal(ir: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
    """normalize_thermal as it was for a 16-bit frame (mode percentile): np.percentile, float64 passes."""
    x = ir.astype(np.float32)
    lo, hi = np.percentile(x, [percentiles[0], percentiles[1]])
    if hi <= lo:
        return np.full(x.shape, 0.5, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def old_finish(fused_y: np.ndarray, pair: PreparedPair) -> np.ndarray:
    y = np.clip(np.nan_to_num(fused_y, nan=0.0), 0.0, 1.0)
    if pair.cbcr is None:
        out = y
    else:
        x = np.concatenate([y[..., None], pair.cbcr], axis=-1)
        x[..., 1:] -= 0.5
        out = np.clip(x @ _OLD_YCC2RGB.T, 0.0, 1.0)
    return (out * 255.0 + 0.5).astype(np.uint8)


# -- the benchmark --------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def load_pair(folder: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The first colour pair of ``folder`` (ir/, vi/), resized like sample_publisher does."""
    for vi_path in sorted((folder / "vi").iterdir()):
        vi = read_image(vi_path)
        if vi.ndim == 3 and not (np.array_equal(vi[..., 0], vi[..., 1]) and np.array_equal(vi[..., 0], vi[..., 2])):
            ir = read_image(folder / "ir" / vi_path.name)
            ir = ir if ir.ndim == 2 else ir[..., 0]
            resize = Image.BILINEAR
            return (
                np.asarray(Image.fromarray(ir).resize(size, resize)),
                np.asarray(Image.fromarray(vi).resize(size, resize)),
            )
    raise SystemExit(f"no colour pair in {folder}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=REPO / "samples", help="folder with ir/ and vi/ [samples]")
    p.add_argument("--size", type=parse_size, default=(640, 512), help="WIDTHxHEIGHT [640x512]")
    p.add_argument("--rounds", type=int, default=40, help="rounds of old + new, alternating [40]")
    p.add_argument("--default-malloc", action="store_true", help="keep glibc's default allocator")
    args = p.parse_args(argv)
    if not args.default_malloc and argv is None:
        from lrcfuse_model.malloc_tuning import FAST_MALLOC_ENV, malloc_tuned

        if not malloc_tuned() and not os.environ.get("LRCFUSE_BENCH_REEXEC"):
            env = {**os.environ, **FAST_MALLOC_ENV, "LRCFUSE_BENCH_REEXEC": "1"}
            os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    from lrcfuse_model.malloc_tuning import malloc_tuned

    ir, vi = load_pair(args.dir, args.size)
    rng = np.random.default_rng(0)
    new_pair, old_pair = prepare_pair(ir, vi), old_prepare_pair(ir, vi)
    # a stand-in for the network output: the visible luma moved towards the thermal image, some out of [0, 1]
    fused = (0.6 * old_pair.vi_y + 0.5 * old_pair.ir + rng.normal(0, 0.02, ir.shape) - 0.05).astype(np.float32)
    gray_new, gray_old = PreparedPair(new_pair.ir, new_pair.vi_y, None), PreparedPair(old_pair.ir, old_pair.vi_y, None)

    ir16 = (ir.astype(np.uint16) * 257 + rng.integers(0, 257, ir.shape)).astype(np.uint16)  # a radiometric frame
    cases = {
        "prepare": (lambda: old_prepare_pair(ir, vi), lambda: prepare_pair(ir, vi)),
        "finish": (lambda: old_finish(fused, old_pair), lambda: finish(fused, new_pair)),
        "finish gray": (lambda: old_finish(fused, gray_old), lambda: finish(fused, gray_new)),
        "thermal 16b": (lambda: old_normalize_thermal(ir16), lambda: normalize_thermal(ir16)),
    }
    for old, new in cases.values():  # warm up
        old(), new()
    times: dict[str, dict[str, list[float]]] = {name: {"old": [], "new": []} for name in cases}
    for r in range(args.rounds):
        for name, (old, new) in cases.items():
            order = (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
            for which, fn in order:
                t0 = time.perf_counter()
                fn()
                times[name][which].append(time.perf_counter() - t0)

    w, h = args.size
    print(
        f"pre/post-processing of a {w}x{h} colour pair ({args.dir.name}), {args.rounds} rounds old/new alternating, "
        f"{'tuned' if malloc_tuned() else 'default'} glibc allocator; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(f"{'':12s} {'old ms':>8s} {'new ms':>8s} {'old/new':>8s}   (medians; ratio: median of per-round ratios)")
    total_old = np.zeros(args.rounds)
    total_new = np.zeros(args.rounds)
    for name, t in times.items():
        old_t, new_t = np.asarray(t["old"]), np.asarray(t["new"])
        if name in ("prepare", "finish"):
            total_old += old_t
            total_new += new_t
        ratio = np.median(old_t / new_t)
        print(f"{name:12s} {1e3 * np.median(old_t):8.2f} {1e3 * np.median(new_t):8.2f} {ratio:7.1f}x")
    print(
        f"{'colour pair':12s} {1e3 * np.median(total_old):8.2f} {1e3 * np.median(total_new):8.2f} "
        f"{np.median(total_old / total_new):7.1f}x   (prepare + finish)"
    )

    # same outputs?
    y_diff = np.abs(new_pair.vi_y - old_pair.vi_y)
    rgb_diff = np.abs(finish(fused, new_pair).astype(int) - old_finish(fused, old_pair))
    gray_diff = np.abs(finish(fused, gray_new).astype(int) - old_finish(fused, gray_old))
    same16 = np.array_equal(normalize_thermal(ir16), old_normalize_thermal(ir16))
    print(
        f"network input Y: largest difference {y_diff.max():.2e} ({100 * np.mean(y_diff > 0):.1f}% of pixels differ "
        f"in the last float32 bits); fused RGB: largest difference {rgb_diff.max()} grey level(s) on "
        f"{int(np.count_nonzero(rgb_diff))} of {rgb_diff.size} values; gray: {int(np.count_nonzero(gray_diff))} "
        f"differ; 16-bit thermal {'bit-identical' if same16 else 'DIFFERENT'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
