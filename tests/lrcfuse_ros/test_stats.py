"""Rates, latency summaries and silent-stream detection behind the node's diagnostics."""

from __future__ import annotations

import math

import pytest

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
    assert snap["ms"]["latency"] == pytest.approx({"mean": 300.0, "p50": 200.0, "max": 600.0})
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
