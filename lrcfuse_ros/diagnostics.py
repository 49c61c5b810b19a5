"""The node's health as diagnostic_msgs/DiagnosticArray and as one log line.

Values (all strings, as DiagnosticStatus requires): input and output rates over the recent window
(``diagnostics_window_s``, see :class:`lrcfuse_ros.stats.RecentWindow`), end-to-end latency (header
stamp -> publish) and where it goes (:data:`TIMINGS`) as mean, p50, p90 and max in ms over the same
window, and running totals of dropped and failed pairs. The keys are documented in the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

# Durations per pair, in ms. latency: header stamp -> fused image published; pairing: header stamp -> the pair
# is complete (the partner's arrival, or the next frame proving no nearer one can come); queue: complete ->
# an inference thread takes it; inference: conversion + preprocessing + network + output image; network: the
# backend alone; publish: the message built and sent; detection: the detector.
TIMINGS = ("latency", "pairing", "queue", "inference", "network", "publish", "detection")
STATS = ("mean", "p50", "p90", "max")


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def diagnostic_values(snapshot: Mapping[str, Any], info: Mapping[str, str]) -> dict[str, str]:
    """Flat ``key -> string`` values of one :meth:`PipelineStats.period` snapshot plus fixed ``info``."""
    rates, totals, ms = snapshot["rates"], snapshot["totals"], snapshot["ms"]
    values = {
        "thermal_hz": _fmt(rates.get("thermal", 0.0)),
        "rgb_hz": _fmt(rates.get("rgb", 0.0)),
        "pairs_hz": _fmt(rates.get("paired", 0.0)),
        "fused_hz": _fmt(rates.get("fused", 0.0)),
    }
    for kind in TIMINGS:
        for stat in STATS:
            values[f"{kind}_ms_{stat}"] = _fmt(ms.get(kind, {}).get(stat, math.nan))
    for key in ("fused", "pairs_dropped_busy", "unpaired_thermal", "unpaired_rgb", "failed_pairs", "detections"):
        values[f"{key}_total" if key in ("fused", "detections") else key] = str(int(totals.get(key, 0)))
    values["window_s"] = _fmt(float(snapshot.get("seconds", math.nan)))
    values.update(info)
    return values


def fusion_status(snapshot: Mapping[str, Any], silent: Mapping[str, float]) -> tuple[bytes, str]:
    """(level, message) of the node over the recent window: WARN while a topic is silent, pairs fail, or
    both cameras deliver but nothing pairs (stamps further apart than slop: unsynchronised clocks?)."""
    counts, rates = snapshot["counts"], snapshot["rates"]
    window = float(snapshot.get("seconds", 0.0))
    problems = []
    if silent:
        problems.append("no data on " + ", ".join(sorted(silent)))
    if counts.get("failed_pairs"):
        problems.append(f"{counts['failed_pairs']} pairs failed in the last {window:.0f} s")
    if counts.get("thermal") and counts.get("rgb") and not counts.get("paired"):
        problems.append(
            f"no pair in the last {window:.0f} s although both cameras deliver (thermal {rates['thermal']:.2f} Hz, "
            f"rgb {rates['rgb']:.2f} Hz): header stamps further apart than slop?"
        )
    if counts.get("time_jumps"):
        problems.append(f"stamps went back {counts['time_jumps']} time(s) (pairing restarted)")
    if problems:
        return DiagnosticStatus.WARN, "; ".join(problems)
    return DiagnosticStatus.OK, f"fusing at {rates.get('fused', 0.0):.2f} Hz"


def diagnostic_array(
    stamp: Any, name: str, values: Mapping[str, str], level: bytes, message: str, hardware_id: str = ""
) -> DiagnosticArray:
    """One DiagnosticStatus named ``name`` carrying ``values`` (``level``: DiagnosticStatus.OK, WARN, ...)."""
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def summary_line(snapshot: Mapping[str, Any]) -> str:
    """``fused 4.8 Hz (thermal 5.0, rgb 5.0) | latency ms mean ... p50 ... max ... | ...`` for the log."""
    rates, totals, ms = snapshot["rates"], snapshot["totals"], snapshot["ms"]
    line = (
        f"fused {rates.get('fused', 0.0):.2f} Hz (thermal {rates.get('thermal', 0.0):.2f} Hz, "
        f"rgb {rates.get('rgb', 0.0):.2f} Hz)"
    )
    if "latency" in ms:
        s = ms["latency"]
        line += f" | latency ms mean {_fmt(s['mean'])} p50 {_fmt(s['p50'])} p90 {_fmt(s['p90'])} max {_fmt(s['max'])}"
    parts = [f"{kind} {_fmt(ms[kind]['mean'])}" for kind in TIMINGS[1:] if kind in ms]
    if parts:
        line += " | mean ms: " + ", ".join(parts)
    line += (
        f" | totals: received thermal {totals.get('thermal', 0)} / rgb {totals.get('rgb', 0)}, "
        f"fused {totals.get('fused', 0)}, dropped busy {totals.get('pairs_dropped_busy', 0)}, "
        f"unpaired thermal {totals.get('unpaired_thermal', 0)} / rgb {totals.get('unpaired_rgb', 0)}, "
        f"failed {totals.get('failed_pairs', 0)}"
    )
    return line
