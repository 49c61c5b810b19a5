"""``lrcfuse bench``: how fast each inference backend fuses a frame, and where the time goes.

For every backend and frame size: milliseconds per frame (median and 90th percentile over
``runs`` timed runs after ``warmup`` untimed ones), frames per second and peak memory. Timing
covers ``Backend.fuse`` on preprocessed float arrays (the network; preprocessing is the same for
all backends and is not included). Model facts: parameters, multiply-accumulates (MACs) per
frame, and for the PyTorch backend the time of each top-level block (``llrr_vi``, ``llrr_ir``,
``fusion``, ``cfpm``, ``decoder``; "other" is the averaging between them).

Peak memory: with ``isolate`` (default) each (backend, size) runs in its own Python process and
reports its peak resident set (``ru_maxrss``) and how much of it the inference added on top of
the loaded backend (peak minus the resident set just before the first frame). Without
``isolate`` everything runs in this process and only the process-wide peak is known.

``compare_malloc`` times the first size once more in two fresh processes: glibc's default
allocator, and the tuned settings of :data:`lrcfuse_model.malloc_tuning.FAST_MALLOC_ENV` that the
``lrcfuse`` command sets for itself.

A benchmark, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..malloc_tuning import allocator_env, malloc_tuned
from ..nn.checkpoint import load_model
from ..nn.model import LRCFuse, count_parameters
from .backends import BACKEND_NAMES, create_backend

BLOCKS = ("llrr_vi", "llrr_ir", "fusion", "cfpm", "decoder")
RECORD_KEYS = ("backend", "height", "width", "median_ms", "p90_ms", "fps")


def count_macs(model: LRCFuse, size_hw: tuple[int, int]) -> int:
    """Multiply-accumulates of the convolutions and transposed convolutions for one ``H x W`` frame.

    Every layer is a stride-1 "same" convolution, so MACs grow exactly with the pixel count: they
    are counted with forward hooks on a 16 x 16 frame and scaled.
    """
    probe = 16
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            x = torch.zeros(1, 1, probe, probe, device=device)
            model(x, x)
    finally:
        for h in handles:
            h.remove()
    return total * size_hw[0] * size_hw[1] // (probe * probe)


def _stats(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    median = float(np.median(ms))
    return {
        "median_ms": round(median, 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "fps": round(1000.0 / median, 3),
    }


def _frame(size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random(size_hw, dtype=np.float32), rng.random(size_hw, dtype=np.float32)


def time_backend(backend: Any, size_hw: tuple[int, int], runs: int, warmup: int) -> dict[str, float]:
    """Median / p90 milliseconds and fps of ``backend.fuse`` on one random frame of ``size_hw``."""
    ir, vi = _frame(size_hw)
    for _ in range(warmup):
        backend.fuse(ir, vi)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        backend.fuse(ir, vi)
        seconds.append(time.perf_counter() - started)
    return {**_stats(seconds), "runs": runs}


def block_times(model: LRCFuse, size_hw: tuple[int, int], runs: int) -> list[dict[str, Any]]:
    """Median milliseconds of each top-level block of the PyTorch model (forward hooks), and its share."""
    starts: dict[str, float] = {}
    spent: dict[str, list[float]] = {name: [] for name in BLOCKS}
    handles = []
    for name in BLOCKS:
        module = getattr(model, name)
        handles.append(
            module.register_forward_pre_hook(lambda m, a, n=name: starts.__setitem__(n, time.perf_counter()))
        )
        handles.append(
            module.register_forward_hook(lambda m, a, o, n=name: spent[n].append(time.perf_counter() - starts[n]))
        )
    device = next(model.parameters()).device
    ir, vi = (torch.from_numpy(a)[None, None].to(device) for a in _frame(size_hw))
    totals = []
    try:
        with torch.inference_mode():
            model(ir, vi)  # warm-up
            for values in spent.values():
                values.clear()
            for _ in range(runs):
                started = time.perf_counter()
                model(ir, vi)
                totals.append(time.perf_counter() - started)
    finally:
        for h in handles:
            h.remove()
    total_ms = float(np.median(totals)) * 1000.0
    rows = [{"block": n, "median_ms": round(float(np.median(v)) * 1000.0, 2)} for n, v in spent.items()]
    rows.append({"block": "other", "median_ms": round(max(total_ms - sum(r["median_ms"] for r in rows), 0.0), 2)})
    for r in rows:
        r.update(height=size_hw[0], width=size_hw[1], share=round(r["median_ms"] / total_ms, 3))
    return rows


def _rss_mb() -> float:
    """Resident set of this process now, MiB (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


def measure(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One (backend, size) measurement, as run in a worker process; see :func:`run_bench`."""
    threads = int(spec.get("threads") or 0)
    if threads:
        torch.set_num_threads(threads)
    backend = create_backend(
        spec["backend"],
        spec.get("weights") or None,
        spec.get("device", "cpu"),
        cache_dir=spec.get("cache_dir") or None,
        threads=threads,
        log=lambda msg: None,
    )
    size_hw = (int(spec["height"]), int(spec["width"]))
    rss_before = _rss_mb()
    record: dict[str, Any] = {"backend": backend.name, "height": size_hw[0], "width": size_hw[1]}
    record.update(time_backend(backend, size_hw, int(spec["runs"]), int(spec["warmup"])))
    record.update(device=backend.device, threads=threads or os.cpu_count())
    peak = _peak_rss_mb()
    record.update(peak_rss_mb=round(peak, 1), frame_mem_mb=round(max(peak - rss_before, 0.0), 1))
    if backend.name == "tensorrt":  # GPU activations: TensorRT's own allocation, not in the process RSS
        engine = backend.engine
        size = getattr(engine, "device_memory_size_v2", None) or engine.device_memory_size
        record["gpu_mem_mb"] = round(size / 2**20, 1)
    result: dict[str, Any] = {"record": record}
    if spec.get("blocks") and backend.name == "torch":
        result["blocks"] = block_times(backend.model, size_hw, max(3, min(int(spec["runs"]), 10)))
    return result


def _in_subprocess(spec: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run :func:`measure` in a fresh Python process (its own peak memory and allocator settings)."""
    proc = subprocess.run(
        [sys.executable, "-m", "lrcfuse_model.inference.bench", "--worker", json.dumps(dict(spec))],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"bench worker for {spec['backend']} failed (exit {proc.returncode}): " + " | ".join(tail))
    return json.loads(lines[-1])


def run_bench(
    backends: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    runs: int = 30,
    warmup: int = 3,
    weights: str | None = None,
    threads: int = 0,
    cache_dir: str | None = None,
    isolate: bool = True,
    blocks: bool = True,
    compare_malloc: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time ``backends`` at ``sizes`` (``(height, width)``); returns records, model facts and block times.

    A backend that cannot start here (e.g. TensorRT without a GPU) is listed under ``skipped``
    with the reason instead of stopping the run.
    """
    unknown = [b for b in backends if b not in BACKEND_NAMES or b == "auto"]
    if unknown:
        raise ValueError(f"bench.backends: unknown {unknown}; choose from torch, onnxruntime, tensorrt")
    model = load_model(weights or None)
    result: dict[str, Any] = {
        "records": [],
        "skipped": [],
        "model": {
            "parameters": count_parameters(model),
            "macs_per_frame": {f"{w}x{h}": count_macs(model, (h, w)) for h, w in sizes},
        },
        "torch_blocks": [],
        "malloc": [],
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "malloc_tuned": malloc_tuned(),
            "isolated_processes": isolate,
        },
    }
    try:
        import onnxruntime

        result["machine"]["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    available = []
    for name in backends:
        try:
            # Prepares the caches (ONNX export, TensorRT engine) once, before any timing.
            create_backend(name, weights, "cpu", cache_dir=cache_dir, threads=threads, log=log)
            available.append(name)
        except Exception as exc:  # a backend that cannot run here is reported, the others still run
            result["skipped"].append({"backend": name, "reason": str(exc)})
            log(f"bench: skipping {name}: {exc}")
    for name in available:
        for h, w in sizes:
            spec = {
                "backend": name, "weights": weights or "", "cache_dir": cache_dir or "", "threads": threads,
                "height": h, "width": w, "runs": runs, "warmup": warmup, "blocks": blocks,
            }  # fmt: skip
            log(f"bench: {name} {w}x{h}: {warmup} warm-up + {runs} timed runs ...")
            out = _in_subprocess(spec) if isolate else measure(spec)
            result["records"].append(out["record"])
            result["torch_blocks"].extend(out.get("blocks", []))
    if compare_malloc and available:
        h, w = sizes[0]
        for name in available:
            spec = {
                "backend": name, "weights": weights or "", "cache_dir": cache_dir or "", "threads": threads,
                "height": h, "width": w, "runs": max(3, min(runs, 5)), "warmup": 1, "blocks": False,
            }  # fmt: skip
            row: dict[str, Any] = {"backend": name, "height": h, "width": w}
            for label, tuned in (("default", False), ("tuned", True)):
                log(f"bench: {name} {w}x{h} with the {label} allocator ...")
                row[f"{label}_median_ms"] = _in_subprocess(spec, allocator_env(tuned))["record"]["median_ms"]
            row["slowdown"] = round(row["default_median_ms"] / row["tuned_median_ms"], 2)
            result["malloc"].append(row)
    return result


def format_report(result: Mapping[str, Any]) -> str:
    """The bench result as readable text tables."""
    lines = []
    header = (
        f"{'backend':<12} {'size':>10} {'median ms':>10} {'p90 ms':>9} {'fps':>7} {'peak MiB':>9} {'+frame MiB':>10}"
    )
    lines += [header, "-" * len(header)]
    for r in result["records"]:
        lines.append(
            f"{r['backend']:<12} {r['width']:>5}x{r['height']:<4} {r['median_ms']:>10.1f} {r['p90_ms']:>9.1f} "
            f"{r['fps']:>7.2f} {r['peak_rss_mb']:>9.0f} {r['frame_mem_mb']:>10.0f}"
        )
    for s in result["skipped"]:
        lines.append(f"{s['backend']:<12} not run: {s['reason']}")
    by_key = {(r["backend"], r["height"], r["width"]): r for r in result["records"]}
    for (name, h, w), r in by_key.items():
        base = by_key.get(("torch", h, w))
        if name != "torch" and base:
            lines.append(f"speed-up {name} vs torch at {w}x{h}: {base['median_ms'] / r['median_ms']:.2f}x")
    m = result["model"]
    macs = ", ".join(f"{k} {v / 1e9:.1f} G" for k, v in m["macs_per_frame"].items())
    lines.append(f"model: {m['parameters']:,} parameters; MACs per frame: {macs}")
    if result["torch_blocks"]:
        lines.append("where the time goes in the PyTorch model (median ms, share of the forward pass):")
        for size in dict.fromkeys((b["width"], b["height"]) for b in result["torch_blocks"]):
            parts = [
                f"{b['block']} {b['median_ms']:.0f} ({100 * b['share']:.0f}%)"
                for b in result["torch_blocks"]
                if (b["width"], b["height"]) == size
            ]
            lines.append(f"  {size[0]}x{size[1]}: " + ", ".join(parts))
    for row in result["malloc"]:
        lines.append(
            f"allocator, {row['backend']} {row['width']}x{row['height']}: "
            f"glibc default {row['default_median_ms']:.0f} ms, tuned {row['tuned_median_ms']:.0f} ms "
            f"(default is {row['slowdown']:.2f}x slower)"
        )
    mach = result["machine"]
    lines.append(
        f"machine: {mach['cpu_count']} CPUs ({mach['processor']}), torch {mach['torch']}, "
        f"onnxruntime {mach.get('onnxruntime', '-')}, malloc tuned: {mach['malloc_tuned']}"
    )
    return "\n".join(lines)


def cmd_bench(cfg: dict[str, Any]) -> int:
    """``lrcfuse bench``: run :func:`run_bench` with the ``bench`` config section, print, optionally write JSON."""
    # Here, not at the top: the worker processes (python -m ...bench --worker) measure their own peak memory.
    from ..config import parse_size, split_list
    from ..reporting import write_json

    b = cfg["bench"]
    sizes = [parse_size(s) for s in split_list(b["sizes"])]
    backends = split_list(b["backends"])
    if not sizes or not backends:
        raise ValueError("lrcfuse bench needs at least one --backends name and one --sizes WIDTHxHEIGHT")
    if b["runs"] < 1 or b["warmup"] < 0:
        raise ValueError(f"bench.runs must be >= 1 and bench.warmup >= 0, got {b['runs']} and {b['warmup']}")
    result = run_bench(
        backends, sizes, runs=b["runs"], warmup=b["warmup"], weights=b["weights"] or None, threads=b["threads"],
        cache_dir=b["cache_dir"] or None, isolate=b["isolate"], blocks=b["blocks"], compare_malloc=b["compare_malloc"],
    )  # fmt: skip
    print()
    print(format_report(result))
    if b["json"]:
        print(f"wrote {write_json(b['json'], result)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(measure(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit("usage: python -m lrcfuse_model.inference.bench --worker SPEC_JSON (internal; use `lrcfuse bench`)")
