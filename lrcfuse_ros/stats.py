"""Counters behind the node's diagnostics: per-period rates, latency and timing, totals, silent streams.

ROS-free and thread-safe (callbacks, the inference thread and the diagnostics timer all touch it),
so it is unit-tested without DDS. Times are seconds from the caller's clock.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import numpy as np


def _summary_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": float("nan"), "p50": float("nan"), "max": float("nan")}
    arr = np.asarray(values, dtype=np.float64) * 1000.0
    return {"mean": float(arr.mean()), "p50": float(np.median(arr)), "max": float(arr.max())}


class PipelineStats:
    """Event counts (in total and per window) and duration samples (per window).

    Each window (e.g. ``"diagnostics"`` and ``"summary"``, read at different periods) sees every
    event; :meth:`period` reads one window and starts it anew.
    """

    def __init__(self, now: float, windows: tuple[str, ...] = ("diagnostics",)) -> None:
        self._lock = threading.Lock()
        self.totals: dict[str, int] = defaultdict(int)
        self._windows = {w: _Window(now) for w in windows}

    def count(self, event: str, n: int = 1) -> None:
        with self._lock:
            self.totals[event] += n
            for window in self._windows.values():
                window.counts[event] += n

    def sample(self, kind: str, seconds: float) -> None:
        with self._lock:
            for window in self._windows.values():
                window.durations[kind].append(seconds)

    def set_total(self, event: str, value: int) -> None:
        """For counters kept elsewhere (the pairing's drops): record their running total."""
        with self._lock:
            self.totals[event] = value

    def period(self, now: float, window: str = "diagnostics") -> dict[str, object]:
        """Rates (events / s) and duration summaries (ms) of ``window`` since its last read; restarts it."""
        with self._lock:
            w = self._windows[window]
            self._windows[window] = _Window(now)
            elapsed = max(now - w.start, 1e-9)
            return {
                "seconds": elapsed,
                "rates": {event: n / elapsed for event, n in w.counts.items()},
                "counts": dict(w.counts),
                "ms": {kind: _summary_ms(v) for kind, v in w.durations.items()},
                "totals": dict(self.totals),
            }


class _Window:
    def __init__(self, start: float) -> None:
        self.start = start
        self.counts: dict[str, int] = defaultdict(int)
        self.durations: dict[str, list[float]] = defaultdict(list)


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
