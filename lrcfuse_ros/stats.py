"""Counters behind the node's diagnostics: per-period rates, latency and timing, totals, silent streams.

ROS-free and thread-safe (callbacks, the inference thread and the diagnostics timer all touch it),
so it is unit-tested without DDS. Times are seconds from the caller's clock.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict

import numpy as np

# Samples kept per kind and window for the percentiles: a node running for days keeps a uniform random
# subset (reservoir sampling) instead of every frame's; mean and max stay exact.
MAX_SAMPLES = 20_000


class _Series:
    """Durations of one kind: exact count, sum and max, and a bounded uniform sample for the percentiles."""

    def __init__(self, rng: random.Random) -> None:
        self.n = 0
        self.total = 0.0
        self.max = float("-inf")
        self.kept: list[float] = []
        self._rng = rng

    def add(self, seconds: float) -> None:
        self.n += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        if len(self.kept) < MAX_SAMPLES:
            self.kept.append(seconds)
        else:
            j = self._rng.randrange(self.n)
            if j < MAX_SAMPLES:
                self.kept[j] = seconds

    def summary_ms(self) -> dict[str, float]:
        if not self.n:
            return {"mean": float("nan"), "p50": float("nan"), "p90": float("nan"), "max": float("nan")}
        p50, p90 = np.percentile(np.asarray(self.kept, dtype=np.float64), [50, 90]) * 1000.0
        return {"mean": self.total / self.n * 1000.0, "p50": float(p50), "p90": float(p90), "max": self.max * 1000.0}


class PipelineStats:
    """Event counts (in total and per window) and duration samples (per window).

    Each window (e.g. ``"diagnostics"`` and ``"summary"``, read at different periods) sees every
    event; :meth:`period` reads one window and starts it anew.
    """

    def __init__(self, now: float, windows: tuple[str, ...] = ("diagnostics",)) -> None:
        self._lock = threading.Lock()
        self.totals: dict[str, int] = defaultdict(int)
        self._rng = random.Random(0)
        self._windows = {w: _Window(now) for w in windows}

    def count(self, event: str, n: int = 1) -> None:
        with self._lock:
            self.totals[event] += n
            for window in self._windows.values():
                window.counts[event] += n

    def sample(self, kind: str, seconds: float) -> None:
        with self._lock:
            for window in self._windows.values():
                series = window.durations.get(kind)
                if series is None:
                    series = window.durations[kind] = _Series(self._rng)
                series.add(seconds)

    def set_total(self, event: str, value: int) -> None:
        """For counters kept elsewhere (the pairing's drops): record their running total."""
        with self._lock:
            self.totals[event] = value

    def period(self, now: float, window: str = "diagnostics") -> dict[str, object]:
        """Rates (events / s) and durations (ms: mean, p50, p90, max) of ``window`` since its last read; restarts it."""
        with self._lock:
            w = self._windows[window]
            self._windows[window] = _Window(now)
            elapsed = max(now - w.start, 1e-9)
            return {
                "seconds": elapsed,
                "rates": {event: n / elapsed for event, n in w.counts.items()},
                "counts": dict(w.counts),
                "ms": {kind: series.summary_ms() for kind, series in w.durations.items()},
                "totals": dict(self.totals),
            }


class _Window:
    def __init__(self, start: float) -> None:
        self.start = start
        self.counts: dict[str, int] = defaultdict(int)
        self.durations: dict[str, _Series] = {}


class StreamWatch:
    """When each input stream last delivered, to warn about silent ones and note when they resume."""

    def __init__(self, streams: list[str], now: float) -> None:
        self._lock = threading.Lock()
        self._last = dict.fromkeys(streams, now)
        self._silent: set[str] = set()

    def seen(self, stream: str, now: float) -> float | None:
        """Record data on ``stream``; returns how long it was silent if it had been reported silent."""
        with self._lock:
            previous = self._last.get(stream, now)
            self._last[stream] = now
            if stream in self._silent:
                self._silent.discard(stream)
                return now - previous
            return None

    def silent(self, now: float, threshold: float) -> dict[str, float]:
        """Streams without data for at least ``threshold`` seconds -> seconds since their last message."""
        if threshold <= 0:
            return {}
        with self._lock:
            out = {s: now - t for s, t in self._last.items() if now - t >= threshold}
            self._silent.update(out)
            return out
