"""``lrcfuse bench``: how fast each model fuses a frame on each inference backend, and where the time goes.

For every (model, backend, frame size) combination: milliseconds per frame (median and 90th
percentile over ``runs`` timed frames after ``warmup`` untimed ones), frames per second, peak
memory (also per megapixel: what a frame adds on top of the loaded backend, ``mb_per_mpixel``) and
the CPU threads the backend really ran on. ``tile`` / ``max_memory`` time tiled inference instead
of whole frames (:mod:`lrcfuse_model.inference.tiling`). Timing covers ``Backend.fuse`` on
preprocessed float arrays (the network; preprocessing is the same for all and is not included).
Models are shipped names (``default``, ``rt``) or weights files.

**Rounds.** The combinations of one frame size are timed in rounds: round ``r`` times one frame of
every combination, starting at the ``r``-th and going round in order, so that load drift on a shared
machine (another job starting, the CPU clocking down) hits all alike. Ratios are computed per round
and then their median is reported: each model against ``default`` (or the first model when
``default`` is not timed) on each backend, and each backend against ``torch`` for each model. A
pause before each frame (``settle_s``, default :data:`SETTLE_S`; not timed) lets the previous
backend's pool threads stop spinning: ONNX Runtime's keep a core busy for up to about 100 ms after a
run with more than one thread, which would slow whatever runs next. Sizes run one after another.

**Processes.** With ``isolate`` (default) every combination lives in its own persistent worker
process (:mod:`lrcfuse_model.inference.bench_worker`): built and warmed up once, it times one
frame per command from this coordinator and finally reports its peak resident set (``VmHWM``)
and how much of it the inference added on top of the loaded backend. The workers of a size start
together (their imports overlap) and build their backends one after another, the model with the
most MACs first; a worker only builds while the memory available leaves room for one more as large
as the largest so far, otherwise the rest of that size runs as a later group (logged). Without
``isolate`` all combinations run in this process, still in rounds, and only the process-wide peak
is known.

Model facts: parameters and multiply-accumulates (MACs) per frame of each model; with ``blocks``,
the time of each top-level block of each model on the PyTorch backend (``llrr_vi``, ``llrr_ir``,
``fusion``, ``cfpm``, ``decoder``: those the model has; "other" is the rest).

``compare_malloc`` times the first size of the first model once more, per backend, in two fresh
workers (interleaved in rounds): glibc's default allocator, and the tuned settings of
:data:`lrcfuse_model.malloc_tuning.FAST_MALLOC_ENV` that the ``lrcfuse`` command sets for itself.

A benchmark, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..malloc_tuning import allocator_env, malloc_tuned
from ..nn.checkpoint import SHIPPED_MODELS, load_model, resolve_weights
from ..nn.model import count_parameters
from .backends import BACKEND_NAMES, create_backend
from .bench_report import format_report, ratio_sentence
from .bench_worker import BLOCKS, Combination, WorkerProcess, block_times, frame_arrays

__all__ = [
    "BLOCKS", "RECORD_KEYS", "SETTLE_S", "block_times", "bench_models", "cmd_bench", "count_macs", "format_report",
    "interleave", "measure", "median_ratio", "ratio_sentence", "resolve_models", "round_ratios", "run_bench",
    "time_backend",
]  # fmt: skip

RECORD_KEYS = ("model", "backend", "height", "width", "median_ms", "p90_ms", "fps", "threads")
SETTLE_S = 0.1  # seconds of untimed pause before each frame of a round (see the module doc)
BASELINE_MODEL = "default"
BASELINE_BACKEND = "torch"
Runner = Any  # Combination (in process) or WorkerProcess: .frame() -> seconds, .finish() -> result


def count_macs(model: nn.Module, size_hw: tuple[int, int]) -> int:
    """Multiply-accumulates of the convolutions and transposed convolutions for one ``H x W`` frame.

    LRCFuse: every layer is a stride-1 "same" convolution at full resolution, so MACs grow exactly
    with the pixel count: they are counted with forward hooks on a 16 x 16 frame and scaled. A model
    with a reduced-resolution code path (``config.scale`` > 1, LRCFuse-RT: a few cells of padding
    around it) is counted on the frame itself, which costs it little. Element-wise work (LRCFuse-RT's
    full-resolution mix) is not counted.
    """
    reduced = int(getattr(getattr(model, "config", None), "scale", 1) or 1) > 1
    probe_hw = size_hw if reduced else (16, 16)
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            x = torch.zeros(1, 1, *probe_hw, device=device)
            model(x, x)
    finally:
        for h in handles:
            h.remove()
    return total * size_hw[0] * size_hw[1] // (probe_hw[0] * probe_hw[1])


def _stats(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    median = float(np.median(ms))
    return {
        "median_ms": round(median, 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "fps": round(1000.0 / median, 3),
    }


def time_backend(backend: Any, size_hw: tuple[int, int], runs: int, warmup: int) -> dict[str, float]:
    """Median / p90 milliseconds and fps of ``backend.fuse`` on one random frame of ``size_hw``, runs in a row."""
    ir, vi = frame_arrays(size_hw)
    for _ in range(warmup):
        backend.fuse(ir, vi)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        backend.fuse(ir, vi)
        seconds.append(time.perf_counter() - started)
    return {**_stats(seconds), "runs": runs}


def measure(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One combination alone in this process, its ``runs`` frames in a row (no rounds): record and blocks."""
    combo = Combination(spec)
    for _ in range(int(spec["runs"])):
        combo.frame()
    return _result(combo.finish(), int(spec.get("warmup", 0)))


def _result(out: Mapping[str, Any], warmup: int) -> dict[str, Any]:
    """A runner's finish() output -> ``{"record": ..., "blocks": ...}`` with the statistics of its frames."""
    seconds = out["seconds"]
    record = {**out["record"], **_stats(seconds), "runs": len(seconds), "warmup": warmup}
    record["round_ms"] = [round(s * 1000.0, 3) for s in seconds]
    return {"record": record, "blocks": out.get("blocks", [])}


# -- rounds and ratios -----------------------------------------------------------------------------


def interleave(
    runners: Sequence[Runner], runs: int, log: Callable[[str], None] | None = None, settle_s: float = SETTLE_S
) -> list[list[float]]:
    """Time ``runs`` rounds: round ``r`` times one frame of every runner, starting at runner ``r mod n``.

    ``settle_s``: untimed pause before each frame.

    Returns the seconds of each runner, in round order (``times[i][r]``: runner ``i`` in round ``r``).
    """
    n = len(runners)
    times: list[list[float]] = [[] for _ in runners]
    started = time.perf_counter()
    for r in range(runs):
        for k in range(n):
            i = (r + k) % n
            if settle_s > 0:
                time.sleep(settle_s)
            times[i].append(runners[i].frame())
        if log and time.perf_counter() - started > 10.0:
            log(f"bench:   round {r + 1}/{runs} done")
            started = time.perf_counter()
    return times


def median_ratio(baseline_s: Sequence[float], other_s: Sequence[float]) -> float:
    """Median over rounds of ``baseline / other`` (how many times faster ``other`` is), paired round by round."""
    pairs = min(len(baseline_s), len(other_s))
    if pairs == 0:
        raise ValueError("median_ratio needs at least one round of both")
    return float(np.median(np.asarray(baseline_s[:pairs], float) / np.asarray(other_s[:pairs], float)))


def round_ratios(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-round speed ratios of the records (each with ``round_ms``), medianed over the rounds.

    For each size and backend: each model against ``default`` (the first model timed there when
    ``default`` is not). For each size and model: each backend against ``torch`` (the first backend timed
    when ``torch`` is not: ``--backends onnxruntime,openvino`` gives OpenVINO against ONNX Runtime).
    ``speedup`` > 1: ``model`` (or ``backend``) is that many times faster than ``baseline``.
    """
    by_size: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for r in records:
        by_size.setdefault((r["height"], r["width"]), []).append(r)
    out: list[dict[str, Any]] = []

    def ratio(kind: str, base: Mapping[str, Any], other: Mapping[str, Any], **keys: Any) -> dict[str, Any]:
        return {
            "kind": kind, "height": other["height"], "width": other["width"], **keys,
            "speedup": round(median_ratio(base["round_ms"], other["round_ms"]), 3),
            "rounds": min(len(base["round_ms"]), len(other["round_ms"])),
            "ratio_of_medians": round(base["median_ms"] / other["median_ms"], 3),
        }  # fmt: skip

    for group in by_size.values():
        for backend in dict.fromkeys(r["backend"] for r in group):
            rows = [r for r in group if r["backend"] == backend]
            base = next((r for r in rows if r["model"] == BASELINE_MODEL), rows[0])
            for r in rows:
                if r is not base:
                    out.append(ratio("model", base, r, backend=backend, model=r["model"], baseline=base["model"]))
        for model in dict.fromkeys(r["model"] for r in group):
            rows = [r for r in group if r["model"] == model]
            base = next((r for r in rows if r["backend"] == BASELINE_BACKEND), rows[0])
            for r in rows:
                if r is not base:
                    out.append(ratio("backend", base, r, model=model, backend=r["backend"], baseline=base["backend"]))
    return out


# -- running ---------------------------------------------------------------------------------------


def resolve_models(models: Sequence[str]) -> dict[str, Path]:
    """Model labels (shipped names or weights files) -> weights files; a clear ``ValueError`` otherwise."""
    out: dict[str, Path] = {}
    for label in dict.fromkeys(str(m) for m in models):
        try:
            path = resolve_weights(label)
        except FileNotFoundError as exc:
            raise ValueError(f"bench.models: {exc}") from None
        if not path.is_file():
            raise ValueError(f"bench.models: {label!r} is a shipped model, but its weights file {path} does not exist")
        out[label] = path
    if not out:
        raise ValueError(f"bench.models: no model given; shipped: {', '.join(SHIPPED_MODELS)}, or a weights file")
    return out


def _model_facts(label: str, path: Path, sizes: Sequence[tuple[int, int]]) -> dict[str, Any]:
    facts: dict[str, Any] = {"model": label, "weights": str(path)}
    if path.suffix.lower() in (".onnx", ".engine", ".plan"):
        return facts  # a runtime file: no PyTorch model to count
    model = load_model(path)
    facts.update(
        architecture=getattr(model, "architecture", "lrcfuse"),
        parameters=count_parameters(model),
        macs_per_frame={f"{w}x{h}": count_macs(model, (h, w)) for h, w in sizes},
    )
    return facts


def _mem_available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _room_for_another(workers: Sequence[WorkerProcess]) -> bool:
    """Whether the memory available leaves room for one more worker as large as the largest so far."""
    available = _mem_available_mb()
    if available is None or not workers:
        return True
    largest = max(float(w.ready.get("peak_rss_mb", 0.0)) for w in workers)
    return available > 1.25 * largest + 512.0


def _run_workers(
    specs: Sequence[Mapping[str, Any]],
    runs: int,
    env: Mapping[str, str] | None,
    heaviness: Callable[[Mapping[str, Any]], float],
    log: Callable[[str], None],
    settle_s: float,
) -> list[dict[str, Any]]:
    """Run ``specs`` in persistent workers, in rounds; their finish() outputs in ``specs`` order."""
    pending = sorted(range(len(specs)), key=lambda i: -heaviness(specs[i]))  # the heaviest is built first
    outputs: dict[int, dict[str, Any]] = {}
    while pending:
        # All start at once (their imports overlap) and build one after another while memory allows.
        workers = {i: WorkerProcess(specs[i], env) for i in pending}
        group: list[int] = []
        try:
            while pending and _room_for_another([workers[i] for i in group]):
                i = pending.pop(0)
                group.append(i)
                workers[i].build()
            if pending:
                log(f"bench: not enough memory for all workers at once; {len(pending)} will run in a later group")
            group.sort()  # rounds in the order of specs
            interleave([workers[i] for i in group], runs, log, settle_s)
            for i in group:
                outputs[i] = workers[i].finish()
        finally:
            for worker in workers.values():
                worker.close()
    return [outputs[i] for i in range(len(specs))]


def _machine(isolate: bool, settle_s: float) -> dict[str, Any]:
    machine = {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "malloc_tuned": malloc_tuned(),
        "isolated_processes": isolate,
        "settle_ms": round(settle_s * 1000.0, 1),
    }
    try:
        import onnxruntime

        machine["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        import openvino

        machine["openvino"] = openvino.__version__
    except ImportError:
        pass
    return machine


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
    models: Sequence[str] | None = None,
    settle_s: float = SETTLE_S,
    tile: str = "off",
    max_memory: str = "2GB",
) -> dict[str, Any]:
    """Time ``models`` x ``backends`` at ``sizes`` (``(height, width)``) in rounds; see the module doc.

    ``tile`` / ``max_memory``: run each backend tiled (:mod:`lrcfuse_model.inference.tiling`); ``off``: whole frames.

    ``models``: shipped names (``default``, ``rt``) or weights files; ``None``: ``[weights]`` if
    given, else ``["default"]``. ``settle_s``: untimed pause before each frame. Returns ``records``
    (one per combination, with ``model`` and the per-round ``round_ms``), ``ratios``, ``models``
    (facts), ``torch_blocks``, ``malloc``, ``skipped`` and ``machine``. A (model, backend) that
    cannot start here (e.g. TensorRT without a GPU) is listed under ``skipped`` with the reason
    instead of stopping the run.
    """
    unknown = [b for b in backends if b not in BACKEND_NAMES or b == "auto"]
    if unknown:
        raise ValueError(f"bench.backends: unknown {unknown}; choose from torch, onnxruntime, openvino, tensorrt")
    paths = resolve_models(list(models) if models else [weights or BASELINE_MODEL])
    result: dict[str, Any] = {
        "records": [], "ratios": [], "skipped": [], "torch_blocks": [], "malloc": [],
        "models": [_model_facts(label, path, sizes) for label, path in paths.items()],
        "machine": _machine(isolate, settle_s),
    }  # fmt: skip
    macs = {f["model"]: max(f.get("macs_per_frame", {}).values(), default=0) for f in result["models"]}
    built: dict[tuple[str, str], Any] = {}  # (model, backend) -> backend that started here
    for label, path in paths.items():
        for name in backends:
            try:
                # Prepares the caches (ONNX export, TensorRT engine) once, before any timing.
                built[label, name] = create_backend(
                    name, str(path), "cpu", cache_dir=cache_dir, threads=threads, log=log
                )
            except Exception as exc:  # a backend that cannot run here is reported, the others still run
                result["skipped"].append({"model": label, "backend": name, "reason": str(exc)})
                log(f"bench: skipping {label} on {name}: {exc}")
    if isolate:
        built = dict.fromkeys(built)  # the workers build their own; free these
    common = {
        "cache_dir": cache_dir or "", "threads": threads, "device": "cpu", "warmup": warmup, "tile": tile,
        "max_memory": max_memory,
    }  # fmt: skip
    for h, w in sizes:
        specs = [
            {**common, "model": m, "weights": str(paths[m]), "backend": b, "height": h, "width": w, "blocks": blocks}
            for m, b in built
        ]
        if not specs:
            break
        names = ", ".join(f"{s['model']}/{s['backend']}" for s in specs)
        log(f"bench: {w}x{h}: {names}: {warmup} warm-up + {runs} timed rounds ...")
        if isolate:
            outs = _run_workers(specs, runs, None, lambda s: macs.get(s["model"], 0), log, settle_s)
        else:
            combos = [Combination(s, built[s["model"], s["backend"]]) for s in specs]
            interleave(combos, runs, log, settle_s)
            outs = [c.finish() for c in combos]
        size_records = []
        for out in outs:
            res = _result(out, warmup)
            res["record"]["weights"] = str(paths[res["record"]["model"]])
            size_records.append(res["record"])
            result["torch_blocks"].extend(res["blocks"])
        result["records"].extend(size_records)
        result["ratios"].extend(round_ratios(size_records))
    if compare_malloc:
        result["malloc"] = _compare_malloc(result["records"], runs, cache_dir, threads, log, settle_s)
    return result


def _compare_malloc(
    records: Sequence[Mapping[str, Any]],
    runs: int,
    cache_dir: str | None,
    threads: int,
    log: Callable[[str], None],
    settle_s: float,
) -> list[dict[str, Any]]:
    """The first size and model, per backend: glibc's default vs the tuned allocator, two workers in rounds."""
    if not records:
        return []
    first = records[0]
    rows = []
    for rec in records:
        if (rec["model"], rec["height"], rec["width"]) != (first["model"], first["height"], first["width"]):
            continue
        spec = {
            "model": rec["model"], "weights": rec["weights"], "backend": rec["backend"], "cache_dir": cache_dir or "",
            "threads": threads, "device": "cpu", "height": rec["height"], "width": rec["width"], "warmup": 1,
            "blocks": False,
        }  # fmt: skip
        where = f"{rec['model']} on {rec['backend']} at {rec['width']}x{rec['height']}"
        log(f"bench: {where}: glibc's default vs the tuned allocator ...")
        times = _run_malloc_pair(spec, max(3, min(runs, 5)), log, settle_s)
        rows.append(
            {
                "model": rec["model"], "backend": rec["backend"], "height": rec["height"], "width": rec["width"],
                "default_median_ms": _stats(times["default"])["median_ms"],
                "tuned_median_ms": _stats(times["tuned"])["median_ms"],
                "slowdown": round(median_ratio(times["default"], times["tuned"]), 2),  # per round, medianed
            }
        )  # fmt: skip
    return rows


def _run_malloc_pair(
    spec: Mapping[str, Any], runs: int, log: Callable[[str], None], settle_s: float
) -> dict[str, list[float]]:
    """Frame seconds of ``spec`` under glibc's default and the tuned allocator: two workers, in rounds."""
    workers = {label: WorkerProcess(spec, allocator_env(label == "tuned")) for label in ("default", "tuned")}
    try:
        for worker in workers.values():
            worker.build()
        times = interleave(list(workers.values()), runs, log, settle_s)
        for worker in workers.values():
            worker.finish()
    finally:
        for worker in workers.values():
            worker.close()
    return dict(zip(workers, times))


def bench_models(models: Sequence[str] | str, weights: str | None) -> list[str]:
    """The models to time from ``bench.models`` and ``bench.weights``: a ``weights`` file replaces
    ``models`` when that is just ``[default]`` (its value before there were models), else is added."""
    from ..config import split_list

    names = split_list(models)
    if weights and names in ([], [BASELINE_MODEL]):
        return [weights]
    return names + [weights] if weights and weights not in names else names


def cmd_bench(cfg: dict[str, Any]) -> int:
    """``lrcfuse bench``: run :func:`run_bench` with the ``bench`` config section, print, optionally write JSON."""
    # Here, not at the top: kept out of the coordinator's imports as before (the workers import neither).
    from ..config import parse_size, split_list
    from ..reporting import write_json

    b = cfg["bench"]
    from .tiling import parse_memory, parse_tile

    parse_tile(b["tile"]), parse_memory(b["max_memory"])  # bad values: a usage error before any worker starts
    sizes = [parse_size(s) for s in split_list(b["sizes"])]
    backends = split_list(b["backends"])
    models = bench_models(b["models"], b["weights"] or None)
    if not sizes or not backends or not models:
        raise ValueError(
            "lrcfuse bench needs at least one --models name, one --backends name and one --sizes WIDTHxHEIGHT"
        )
    if b["runs"] < 1 or b["warmup"] < 0 or b["settle_ms"] < 0:
        raise ValueError(
            f"bench.runs must be >= 1, bench.warmup and bench.settle_ms >= 0; got {b['runs']}, {b['warmup']}, "
            f"{b['settle_ms']}"
        )
    result = run_bench(
        backends, sizes, runs=b["runs"], warmup=b["warmup"], models=models, threads=b["threads"],
        settle_s=b["settle_ms"] / 1000.0, cache_dir=b["cache_dir"] or None, isolate=b["isolate"], blocks=b["blocks"],
        compare_malloc=b["compare_malloc"], tile=b["tile"], max_memory=b["max_memory"],
    )  # fmt: skip
    print()
    print(format_report(result))
    if b["json"]:
        print(f"wrote {write_json(b['json'], result)}")
    return 0
