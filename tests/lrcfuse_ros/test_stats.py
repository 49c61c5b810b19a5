"""Rates, latency summaries and silent-stream detection behind the node's diagnostics."""

from __future__ import annotations

import math

import pytest

from lrcfuse_ros import stats as stats_module
from lrcfuse_ros.stats import PipelineStats, StreamWatch


def test_period_rates_and_ms_summaries_then_reset() -> None:
    stats = PipelineStats(now=0.0, windows=("diagnostics", "summary"))
    for _ in range(10):
        stats.count("thermal")
    stats.count("fused", 4)
    for s in (0.1, 0.2, 0.6):
        stats.sample("latency", s)
    snap = stats.period(2.0, "diagnostics")
    assert snap["rates"]["thermal"] == pytest.approx(5.0)
    assert snap["rates"]["fused"] == pytest.approx(2.0)
    assert snap["ms"]["latency"] == pytest.approx({"mean": 300.0, "p50": 200.0, "p90": 520.0, "max": 600.0})
    again = stats.period(3.0, "diagnostics")
    assert again["rates"] == {} and again["totals"]["fused"] == 4
    # the other window still holds everything since it started
    assert stats.period(4.0, "summary")["counts"] == {"thermal": 10, "fused": 4}


def test_set_total_keeps_an_external_counter() -> None:
    stats = PipelineStats(now=0.0)
    stats.set_total("unpaired_rgb", 3)
    assert stats.period(1.0)["totals"]["unpaired_rgb"] == 3
    assert math.isnan(stats.period(2.0)["ms"].get("latency", {"mean": math.nan})["mean"])


def test_stream_watch_reports_silence_and_resumption() -> None:
    watch = StreamWatch(["/a", "/b"], now=0.0)
    watch.seen("/a", 4.0)
    assert watch.silent(5.5, threshold=5.0) == {"/b": 5.5}
    assert watch.seen("/a", 6.0) is None  # /a never went silent
    assert watch.seen("/b", 7.0) == pytest.approx(7.0)  # silent since start, now back
    assert watch.silent(8.0, threshold=5.0) == {}
    assert watch.silent(100.0, threshold=0) == {}  # 0 = never warn


def test_a_long_run_keeps_a_bounded_sample_with_exact_mean_and_max(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats_module, "MAX_SAMPLES", 100)
    stats = PipelineStats(now=0.0, windows=("run",))
    for k in range(10_000):
        stats.sample("latency", (k % 1000) / 1000.0)  # 0 .. 0.999 s, ten times over
    stats.sample("latency", 5.0)
    series = stats._windows["run"].durations["latency"]
    assert len(series.kept) == 100 and series.n == 10_001
    ms = stats.period(1.0, "run")["ms"]["latency"]
    assert ms["max"] == pytest.approx(5000.0)
    assert ms["mean"] == pytest.approx((sum(k % 1000 for k in range(10_000)) + 5000.0) / 10_001)
    assert 300.0 < ms["p50"] < 700.0  # a uniform sample of 0 .. 999 ms


# -- the recent window of the diagnostics (issue 13 item 8) ---------------------------------------


@pytest.mark.parametrize("hz", [0.5, 2.0, 30.0])
def test_recent_rates_are_right_at_slow_and_fast_rates_whenever_read(hz: float) -> None:
    """Read anywhere between two frames, a regular stream (with 1 ms of jitter) reads its own rate."""
    stats = PipelineStats(now=0.0, windows=(), recent_s=10.0)
    n = int(30 * hz)
    frames = [k / hz + 0.001 * ((7 * k) % 3) for k in range(n)]
    readings = []
    for k, t in enumerate(frames):
        stats.count("fused", now=t)
        stats.sample("latency", 0.02 + 0.001 * (k % 5), now=t)
        if 1 <= k < n - 1:
            readings += [stats.recent(t + f * (frames[k + 1] - t))["rates"]["fused"] for f in (0.1, 0.5, 0.99)]
    assert readings and all(abs(r - hz) <= 0.05 * hz for r in readings), (min(readings), max(readings))
    snap = stats.recent(frames[-1] + 0.1)
    assert snap["ms"]["latency"]["max"] == pytest.approx(24.0) and snap["seconds"] == 10.0


def test_a_stopped_stream_fades_out_of_the_window_and_counts_stay_in_it() -> None:
    stats = PipelineStats(now=0.0, windows=(), recent_s=10.0)
    stats.count("failed_pairs", now=0.0)
    for k in range(60):  # 30 Hz for 2 s, then nothing
        stats.count("rgb", now=k / 30)
    last = 59 / 30
    assert stats.recent(last + 0.01)["rates"]["rgb"] == pytest.approx(30.0)
    assert stats.recent(5.0)["counts"]["failed_pairs"] == 1
    faded = [stats.recent(last + s)["rates"]["rgb"] for s in (1.0, 5.0, 9.0, 10.5)]
    assert faded[0] == pytest.approx(6.0) and faded == sorted(faded, reverse=True) and faded[-1] == 0.0
    assert "failed_pairs" not in stats.recent(10.5)["counts"]
    assert stats.recent(10.5)["totals"]["rgb"] == 60


def test_recent_needs_a_window() -> None:
    with pytest.raises(ValueError, match="recent_s"):
        PipelineStats(now=0.0).recent(1.0)
