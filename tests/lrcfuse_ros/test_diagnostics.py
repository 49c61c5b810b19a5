"""Level and message of the node's diagnostics status over the recent window (issue 13 item 8)."""

from __future__ import annotations

import pytest

pytest.importorskip("diagnostic_msgs", reason="diagnostic_msgs not installed (pip install lrcfuse_ros[ros])")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from lrcfuse_ros.diagnostics import diagnostic_values, fusion_status  # noqa: E402
from lrcfuse_ros.stats import PipelineStats  # noqa: E402


def _stats(events: dict[str, int], hz: float = 0.5) -> dict:
    stats = PipelineStats(now=0.0, windows=(), recent_s=10.0)
    for event, n in events.items():
        for k in range(n):
            stats.count(event, now=k / hz)
    return stats.recent(n / hz if (n := max(events.values(), default=0)) else 1.0)


def test_fusing_is_ok_with_its_rate() -> None:
    level, message = fusion_status(_stats({"thermal": 5, "rgb": 5, "paired": 5, "fused": 5}), {})
    assert (level, message) == (DiagnosticStatus.OK, "fusing at 0.50 Hz")


def test_cameras_that_deliver_but_never_pair_are_a_warning() -> None:
    level, message = fusion_status(_stats({"thermal": 5, "rgb": 5}), {})
    assert level == DiagnosticStatus.WARN
    assert message.startswith("no pair in the last 10 s although both cameras deliver (thermal 0.50 Hz, rgb 0.50 Hz)")


def test_silence_failures_and_time_jumps_are_named() -> None:
    snapshot = _stats({"thermal": 5, "rgb": 5, "paired": 5, "fused": 3, "failed_pairs": 2, "time_jumps": 1})
    level, message = fusion_status(snapshot, {"/thermal/image_raw": 6.0})
    assert level == DiagnosticStatus.WARN
    assert message == (
        "no data on /thermal/image_raw; 2 pairs failed in the last 10 s; stamps went back 1 time(s) (pairing restarted)"
    )
    values = diagnostic_values(snapshot, {"model": "rt"})
    assert values["thermal_hz"] == "0.50" and values["window_s"] == "10.00" and values["model"] == "rt"
