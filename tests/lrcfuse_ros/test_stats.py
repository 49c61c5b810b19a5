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
