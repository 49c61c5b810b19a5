"""The measuring side of ``lrcfuse bench``: one (model, backend, size) combination, in this process or in a worker.

A :class:`Combination` builds its backend, warms it up, then times one frame per :meth:`~Combination.frame`
call, and at the end (:meth:`~Combination.finish`) reports its record: timing statistics, the
threads the backend really uses, peak memory, and for the PyTorch backend the time of each block.
:mod:`lrcfuse_model.inference.bench` (the coordinator) calls ``frame()`` on all combinations of a
frame size in rounds.

With ``isolate`` every combination lives in a persistent worker process (``python -m
lrcfuse_model.inference.bench_worker SPEC_JSON``), so that it has its own peak memory and allocator
settings; :class:`WorkerProcess` is the coordinator's handle on one. The line protocol (one JSON
object per line on the worker's stdout, commands on its stdin):

* coordinator ``build`` -> worker builds its backend and warms up -> ``{"ready": true, "peak_rss_mb": ...}``
  (workers are started together, so their imports overlap, but build one after another: see
  :func:`lrcfuse_model.inference.bench._run_workers`)
* coordinator ``frame`` -> worker ``{"s": <seconds of one Backend.fuse>}``
* coordinator ``done`` -> worker ``{"record": {...}, "blocks": [...]}``, then it exits
* on any error the worker answers ``{"error": "..."}`` and exits with status 1; end of input
  before ``build`` ends it quietly (a worker not needed after all).

The worker writes the protocol on a private copy of its stdout and points file descriptor 1 at
stderr, so nothing a library prints can garble it. Imports are kept to what the measurement needs
(no config, no reporting), so peak-memory numbers stay comparable between versions.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .backends import create_backend

BLOCKS = ("llrr_vi", "llrr_ir", "fusion", "cfpm", "decoder")
WORKER_MODULE = "lrcfuse_model.inference.bench_worker"


def frame_arrays(size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The random thermal / visible frame every combination is timed on (fixed seed)."""
    rng = np.random.default_rng(0)
    return rng.random(size_hw, dtype=np.float32), rng.random(size_hw, dtype=np.float32)


def _proc_status_mb(key: str) -> float | None:
    """A memory line of /proc/self/status (``VmRSS``, ``VmHWM``) in MiB; None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident set of this process now, MiB (Linux /proc; 0 where unavailable)."""
    return _proc_status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """Peak resident set of this process so far, MiB.

    Linux: ``VmHWM``, the high-water mark of this process's own memory. Not ``ru_maxrss``: Linux
    carries that over ``fork`` and ``exec``, so a worker would report at least its parent's size.
    Elsewhere ``ru_maxrss``.
    """
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


def block_times(model: torch.nn.Module, size_hw: tuple[int, int], runs: int) -> list[dict[str, Any]]:
    """Median milliseconds of each top-level block of a PyTorch model (forward hooks), and its share.

    The blocks are those of :data:`BLOCKS` that ``model`` has (LRCFuse: all five; LRCFuse-RT: the
    four LRCFuse blocks of its reduced-resolution path). "other" is the rest of the forward pass
    (LRCFuse: the averaging between blocks; LRCFuse-RT: pooling, its head and the full-resolution mix).
    """
    names = [n for n in BLOCKS if isinstance(getattr(model, n, None), torch.nn.Module)]
    starts: dict[str, float] = {}
    spent: dict[str, list[float]] = {name: [] for name in names}
    handles = []
    for name in names:
        module = getattr(model, name)
        handles.append(
            module.register_forward_pre_hook(lambda m, a, n=name: starts.__setitem__(n, time.perf_counter()))
        )
        handles.append(
            module.register_forward_hook(lambda m, a, o, n=name: spent[n].append(time.perf_counter() - starts[n]))
        )
    device = next(model.parameters()).device
    ir, vi = (torch.from_numpy(a)[None, None].to(device) for a in frame_arrays(size_hw))
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
    rows = [{"block": n, "median_ms": round(float(np.median(v)) * 1000.0, 3)} for n, v in spent.items()]
    rows.append({"block": "other", "median_ms": round(max(total_ms - sum(r["median_ms"] for r in rows), 0.0), 3)})
    for r in rows:
        r.update(height=size_hw[0], width=size_hw[1], share=round(r["median_ms"] / total_ms, 3))
    return rows


class Combination:
    """One (model, backend, size), measured in this process: built and warmed up on construction.

    ``spec`` keys: ``model`` (the label in the records), ``weights`` (the file), ``backend``,
    ``height``, ``width``, ``warmup``, ``threads``, ``cache_dir``, ``device``, ``blocks``, ``tile`` and
    ``max_memory`` (tiled inference, :mod:`lrcfuse_model.inference.tiling`; tile ``off`` = the plain backend).
    ``backend`` may hand in an already built backend (the in-process bench reuses them across sizes).
    """

    def __init__(self, spec: Mapping[str, Any], backend: Any = None) -> None:
        self.spec = dict(spec)
        threads = int(spec.get("threads") or 0)
        if threads:
            torch.set_num_threads(threads)
        self.backend = backend or create_backend(
            spec["backend"],
            spec.get("weights") or None,
            spec.get("device", "cpu"),
            cache_dir=spec.get("cache_dir") or None,
            threads=threads,
            log=lambda msg: None,
            tile=None if str(spec.get("tile", "off")) == "off" else str(spec["tile"]),
            max_memory=spec.get("max_memory", 0),
        )
        self.size_hw = (int(spec["height"]), int(spec["width"]))
        self.ir, self.vi = frame_arrays(self.size_hw)
        self.rss_before = rss_mb()
        for _ in range(int(spec.get("warmup", 0))):
            self.backend.fuse(self.ir, self.vi)
        self.seconds: list[float] = []

    def frame(self) -> float:
        """Seconds of one ``Backend.fuse`` on the combination's frame (also kept for the record)."""
        started = time.perf_counter()
        self.backend.fuse(self.ir, self.vi)
        spent = time.perf_counter() - started
        self.seconds.append(spent)
        return spent

    def threads(self) -> int:
        """The CPU threads the backend runs on: ONNX Runtime's intra-op pool, else PyTorch's."""
        return int(getattr(self.backend, "threads", 0) or torch.get_num_threads())

    def finish(self) -> dict[str, Any]:
        """The record (no statistics: the coordinator computes them from the frame times) and block times."""
        b = self.backend
        record: dict[str, Any] = {
            "model": self.spec.get("model", ""),
            "backend": b.name,
            "height": self.size_hw[0],
            "width": self.size_hw[1],
            "device": b.device,
            "threads": self.threads(),
        }
        peak = peak_rss_mb()
        frame_mem = max(peak - self.rss_before, 0.0)
        record.update(
            peak_rss_mb=round(peak, 1),
            frame_mem_mb=round(frame_mem, 1),
            # what a frame adds per megapixel: the number that decides how large a frame fits (issue 14)
            mb_per_mpixel=round(frame_mem / (self.size_hw[0] * self.size_hw[1] / 1e6), 1),
            tile=str(self.spec.get("tile", "off")),
        )
        if b.name == "tensorrt":  # GPU activations: TensorRT's own allocation, not in the process RSS
            engine = b.engine
            size = getattr(engine, "device_memory_size_v2", None) or engine.device_memory_size
            record["gpu_mem_mb"] = round(size / 2**20, 1)
        result: dict[str, Any] = {"record": record, "seconds": list(self.seconds)}
        if self.spec.get("blocks") and b.name == "torch":
            runs = max(3, min(len(self.seconds), 10))
            result["blocks"] = [{"model": record["model"], **row} for row in block_times(b.model, self.size_hw, runs)]
        return result


# -- worker process ----------------------------------------------------------------------------------


def serve(spec: Mapping[str, Any], commands: IO[str], replies: IO[str]) -> int:
    """The worker's loop: build and warm up, say ready, answer ``frame`` and ``done`` (see the module doc)."""

    def send(obj: Mapping[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    try:
        first = commands.readline().strip()
        if first != "build":
            if first:
                raise ValueError(f"expected the command 'build' first, got {first!r}")
            return 0
        combo = Combination(spec)
        send({"ready": True, "peak_rss_mb": round(peak_rss_mb(), 1)})
        for line in commands:
            command = line.strip()
            if command == "frame":
                send({"s": combo.frame()})
            elif command == "done":
                send(combo.finish())
                return 0
            else:
                raise ValueError(f"unknown command {command!r}")
        raise EOFError("the coordinator closed the command pipe before 'done'")
    except Exception as exc:  # reported to the coordinator, which names the combination
        send({"error": f"{type(exc).__name__}: {exc}"})
        return 1


class WorkerProcess:
    """The coordinator's handle on one persistent worker process (its own peak memory and allocator env)."""

    def __init__(self, spec: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
        self.spec = dict(spec)
        self.label = f"{spec.get('model', '')} on {spec['backend']} at {spec['width']}x{spec['height']}"
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, json.dumps(self.spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            env=dict(env) if env is not None else None,
        )
        self.ready: dict[str, Any] = {}

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        reply = json.loads(line) if line.strip() else {}
        if not reply or "error" in reply:
            self.proc.wait(timeout=30)
            self._stderr.seek(0)
            tail = [s for s in self._stderr.read().strip().splitlines() if s.strip()][-5:]
            why = reply.get("error") or " | ".join(tail) or "no output"
            raise RuntimeError(f"bench worker for {self.label} failed (exit {self.proc.returncode}): {why}")
        return reply

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker died: _reply reports why

    def build(self) -> dict[str, Any]:
        """Have the worker build its backend and warm up; its ready message (``peak_rss_mb``)."""
        self._send("build")
        self.ready = self._reply()
        return self.ready

    def frame(self) -> float:
        """Seconds of one frame, timed inside the worker (the pipe round trip is not counted)."""
        self._send("frame")
        return float(self._reply()["s"])

    def finish(self) -> dict[str, Any]:
        """The worker's record and block times; the worker exits."""
        self._send("done")
        result = self._reply()
        self.proc.wait(timeout=60)
        self._stderr.close()
        return result

    def close(self) -> None:
        """End the worker if it still runs (after an error elsewhere)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m {WORKER_MODULE} SPEC_JSON (internal; use `lrcfuse bench`)", file=sys.stderr)
        return 2
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints (C or Python) go to stderr
    sys.stdout = sys.stderr
    return serve(json.loads(argv[0]), sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
