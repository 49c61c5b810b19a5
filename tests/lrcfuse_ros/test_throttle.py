"""Warnings throttled per kind."""

from __future__ import annotations

from lrcfuse_ros.throttle import KeyedThrottle


def test_each_kind_has_its_own_period_and_the_next_line_counts_the_suppressed() -> None:
    now = [0.0]
    throttle = KeyedThrottle(5.0, clock=lambda: now[0])
    lines: list[str] = []
    assert throttle.log("encoding", lines.append, "bad encoding")
    assert not throttle.log("encoding", lines.append, "bad encoding")
    assert not throttle.log("encoding", lines.append, "bad encoding")
    assert throttle.log("size", lines.append, "size mismatch")  # another kind is not held back
    now[0] = 5.0
    assert throttle.log("encoding", lines.append, "bad encoding")
    assert lines == ["bad encoding", "size mismatch", "bad encoding (2 similar messages suppressed)"]
