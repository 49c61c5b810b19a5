"""Counters behind the node's diagnostics: rates, latency and timing over a recent window or per period,
totals, silent streams.

ROS-free and thread-safe (callbacks, the inference thread and the diagnostics timer all touch it),
so it is unit-tested without DDS. Times are seconds from the caller's clock.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict, deque

import numpy as np

# Samples kept per kind and window for the percentiles: a node running for days keeps a uniform random
# subset (reservoir sampling) instead of every frame's; mean and max stay exact.
MAX_SAMPLES = 20_000
# Events and durations kept per kind in the recent window (at 30 Hz a 10 s window holds 300).
MAX_RECENT = 10_000


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

    def __init__(self, now: float, windows: tuple[str, ...] = ("diagnostics",), recent_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self.totals: dict[str, int] = defaultdict(int)
        self._rng = random.Random(0)
        self._windows = {w: _Window(now) for w in windows}
        self._recent = RecentWindow(recent_s, now) if recent_s > 0 else None

    def count(self, event: str, n: int = 1, now: float | None = None) -> None:
        with self._lock:
            self.totals[event] += n
            for window in self._windows.values():
                window.counts[event] += n
            if self._recent is not None:
                self._recent.count(event, n, time.monotonic() if now is None else now)

    def sample(self, kind: str, seconds: float, now: float | None = None) -> None:
        with self._lock:
            if self._recent is not None:
                self._recent.sample(kind, seconds, time.monotonic() if now is None else now)
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

    def recent(self, now: float) -> dict[str, object]:
        """The last ``recent_s`` seconds (see :class:`RecentWindow`), with the running totals; nothing restarts."""
        with self._lock:
            if self._recent is None:
                raise ValueError("PipelineStats was made without a recent window (recent_s=0)")
            return self._recent.snapshot(now) | {"totals": dict(self.totals)}


class RecentWindow:
    """Rates and durations over the last ``seconds`` (a sliding window), meaningful at 0.5 Hz and at 30 Hz.

    Per-period counts read every second say 0 or 1 Hz for a 0.5 Hz stream; here a rate is measured over the
    window's events: (n - 1) / (newest - oldest) while the stream is still arriving at that pace (the newest
    event no older than twice its mean interval), exact for a regular stream at any rate with two events in
    the window; once it slows down or stops, n / window, which falls to 0 as its events leave the window.
    Not thread-safe on its own (PipelineStats holds the lock).
    """

    def __init__(self, seconds: float, now: float) -> None:
        self.seconds = float(seconds)
        self._start = now
        self._events: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=MAX_RECENT))
        self._durations: dict[str, deque[tuple[float, float]]] = defaultdict(lambda: deque(maxlen=MAX_RECENT))

    def count(self, event: str, n: int, now: float) -> None:
        self._events[event].extend([now] * n)

    def sample(self, kind: str, seconds: float, now: float) -> None:
        self._durations[kind].append((now, seconds))

    def _expire(self, now: float) -> None:
        cutoff = now - self.seconds
        for times in self._events.values():
            while times and times[0] < cutoff:
                times.popleft()
        for samples in self._durations.values():
            while samples and samples[0][0] < cutoff:
                samples.popleft()

    def rate(self, event: str, now: float) -> float:
        times = self._events.get(event)
        if not times:
            return 0.0
        n = len(times)
        span = times[-1] - times[0]
        if n >= 2 and span > 0 and now - times[-1] <= 2 * span / (n - 1):
            return (n - 1) / span
        return n / self.seconds

    def snapshot(self, now: float) -> dict[str, object]:
        """``seconds`` (the window, or less right after start), ``rates``, ``counts`` and ``ms`` of the window."""
        self._expire(now)
        ms = {}
        for kind, samples in self._durations.items():
            if samples:
                values = np.asarray([s for _, s in samples], dtype=np.float64)
                p50, p90 = np.percentile(values, [50, 90]) * 1000.0
                ms[kind] = {"mean": float(values.mean() * 1000.0), "p50": float(p50), "p90": float(p90),
                            "max": float(values.max() * 1000.0)}  # fmt: skip
        return {
            "seconds": min(self.seconds, now - self._start),
            "rates": {event: self.rate(event, now) for event in self._events},
            "counts": {event: len(times) for event, times in self._events.items() if times},
            "ms": ms,
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
