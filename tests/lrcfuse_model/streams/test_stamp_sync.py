"""Approximate-time pairing: jitter, drops, reordering, different rates, slop boundary, overflow."""

from __future__ import annotations

import numpy as np
import pytest

from lrcfuse_model.streams.stamp_sync import ApproximateTimeSync, StampedPair


def _run(sync: ApproximateTimeSync, events: list[tuple[str, float, object]], flush: bool = True) -> list[StampedPair]:
    """Feed (stream, stamp, item) events in the given arrival order; return every emitted pair."""
    pairs: list[StampedPair] = []
    for stream, stamp, item in events:
        pairs += sync.push_thermal(stamp, item) if stream == "thermal" else sync.push_rgb(stamp, item)
    if flush:
        pairs += sync.flush()
    return pairs


def _arrivals(thermal: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, latency: float = 0.02) -> list:
    """Events ordered by arrival time = stamp + random transport latency (each stream stays in order)."""
    events = []
    for stream, stamps in (("thermal", thermal), ("rgb", rgb)):
        arrival = np.maximum.accumulate(stamps + rng.uniform(0, latency, len(stamps)))
        events += [(float(a), stream, float(s), (stream, i)) for i, (a, s) in enumerate(zip(arrival, stamps))]
    return [e[1:] for e in sorted(events)]


def _assert_in_order(pairs: list[StampedPair], slop: float) -> None:
    for p in pairs:
        assert abs(p.thermal_stamp - p.rgb_stamp) <= slop + 1e-6
    assert all(np.diff([p.thermal_stamp for p in pairs]) > 0)
    assert all(np.diff([p.rgb_stamp for p in pairs]) > 0)


def test_jittered_10hz_cameras_pair_every_frame():
    rng = np.random.default_rng(1)
    n = 200
    base = 1_700_000_000.0 + np.arange(n) * 0.1
    thermal = base + rng.uniform(-0.01, 0.01, n)
    rgb = base + 0.003 + rng.uniform(-0.01, 0.01, n)
    sync = ApproximateTimeSync(slop=0.05, queue_size=10)
    pairs = _run(sync, _arrivals(thermal, rgb, rng))
    assert len(pairs) == n and sync.paired == n
    assert [p.thermal for p in pairs] == [("thermal", i) for i in range(n)]
    assert [p.rgb for p in pairs] == [("rgb", i) for i in range(n)]
    assert sync.dropped_thermal == 0 and sync.dropped_rgb == 0
    _assert_in_order(pairs, 0.05)


def test_pairs_come_out_before_the_end_when_certain():
    """Live use: a pair is emitted as soon as the next frame proves it; equal stamps at once."""
    sync = ApproximateTimeSync(slop=0.05)
    assert sync.push_thermal(1.0, "t0") == []
    assert [p.rgb for p in sync.push_rgb(1.0, "r0")] == ["r0"]  # exact match: nothing can be nearer
    assert sync.push_thermal(1.1, "t1") == []
    assert sync.push_rgb(1.12, "r1") == []  # a thermal frame at 1.1..1.14 could still be nearer to r1
    assert [(p.thermal, p.rgb) for p in sync.push_thermal(1.2, "t2")] == [("t1", "r1")]


def test_missing_frames_are_counted_and_the_rest_still_pair():
    rng = np.random.default_rng(2)
    n = 100
    base = np.arange(n) * 0.1
    thermal_keep = np.ones(n, bool)
    thermal_keep[[5, 6, 40, 77]] = False
    rgb_keep = np.ones(n, bool)
    rgb_keep[[10, 50, 51, 52]] = False
    thermal = base[thermal_keep] + rng.uniform(-0.01, 0.01, thermal_keep.sum())
    rgb = base[rgb_keep] + rng.uniform(-0.01, 0.01, rgb_keep.sum())
    dropped: list[tuple[str, str]] = []
    sync = ApproximateTimeSync(slop=0.05, queue_size=10, on_drop=lambda s, t, item, why: dropped.append((s, why)))
    pairs = _run(sync, _arrivals(thermal, rgb, rng))
    both = thermal_keep & rgb_keep
    assert len(pairs) == both.sum() == n - 8
    # every message without its partner was dropped and counted, none silently
    assert sync.dropped_thermal == (thermal_keep & ~rgb_keep).sum() == 4
    assert sync.dropped_rgb == (rgb_keep & ~thermal_keep).sum() == 4
    assert len(dropped) == 8 and sync.stats()["pending_thermal"] == 0
    _assert_in_order(pairs, 0.05)


def test_reordered_arrival_within_the_queue():
    """RGB leads and arrives pairwise swapped, thermal lags 3 frames: every frame pairs with its partner."""
    n = 20
    thermal = np.arange(n) * 0.1 + 0.004
    rgb = np.arange(n) * 0.1
    rgb_order = np.arange(n).reshape(-1, 2)[:, ::-1].reshape(-1)  # 1, 0, 3, 2, ...
    events = []
    for k in range(n + 3):
        if k < n:
            events.append(("rgb", float(rgb[rgb_order[k]]), ("rgb", int(rgb_order[k]))))
        if k >= 3:
            events.append(("thermal", float(thermal[k - 3]), ("thermal", k - 3)))
    sync = ApproximateTimeSync(slop=0.03, queue_size=10)
    pairs = _run(sync, events)
    assert [(p.thermal[1], p.rgb[1]) for p in pairs] == [(i, i) for i in range(n)]
    assert sync.dropped_thermal == sync.dropped_rgb == 0


def test_cross_stream_reordering_and_shuffled_arrival_within_queue_size():
    """Arrival order shuffled within a window smaller than the queue: pairs hold while messages wait."""
    rng = np.random.default_rng(4)
    n = 40
    thermal = np.arange(n) * 0.1 + rng.uniform(-0.01, 0.01, n)
    rgb = np.arange(n) * 0.1 + rng.uniform(-0.01, 0.01, n)
    events = [("thermal", float(s), ("thermal", i)) for i, s in enumerate(thermal)]
    events += [("rgb", float(s), ("rgb", i)) for i, s in enumerate(rgb)]
    # each RGB frame arrives 0.25 s late, so thermal frames k+1, k+2 overtake it
    events.sort(key=lambda e: e[1] + (0.25 if e[0] == "rgb" else 0.0))
    sync = ApproximateTimeSync(slop=0.05, queue_size=5)
    pairs = _run(sync, events, flush=True)
    assert [(p.thermal[1], p.rgb[1]) for p in pairs] == [(i, i) for i in range(n)]


def test_message_older_than_the_last_pair_is_dropped_as_too_old():
    sync = ApproximateTimeSync(slop=0.05)
    assert len(sync.push_thermal(2.0, "t") + sync.push_rgb(2.0, "r")) == 1
    assert sync.push_thermal(1.9, "late") == []
    assert sync.stats()["drop_reasons"] == {"thermal/too_old": 1}


def test_30hz_rgb_with_9hz_thermal_pairs_each_thermal_with_its_nearest_rgb():
    rng = np.random.default_rng(3)
    rgb = np.arange(0, 10, 1 / 30) + rng.uniform(-0.003, 0.003, 300)
    thermal = np.arange(0.013, 10, 1 / 9) + rng.uniform(-0.003, 0.003, 90)
    sync = ApproximateTimeSync(slop=0.02, queue_size=10)
    pairs = _run(sync, _arrivals(thermal, rgb, rng))
    assert len(pairs) == 90
    for p in pairs:
        assert p.rgb_stamp == rgb[np.argmin(np.abs(rgb - p.thermal_stamp))]
    assert sync.dropped_thermal == 0 and sync.dropped_rgb == 300 - 90
    _assert_in_order(pairs, 0.02)


def test_slop_boundary():
    sync = ApproximateTimeSync(slop=0.05)
    pairs = _run(sync, [("thermal", 10.0, "t0"), ("rgb", 10.05, "r0"), ("thermal", 20.0, "t1"), ("rgb", 20.0501, "r1")])
    assert [(p.thermal, p.rgb) for p in pairs] == [("t0", "r0")]  # 50 ms pairs, 50.1 ms does not
    assert sync.dropped_thermal == 1 and sync.dropped_rgb == 1


def test_a_nearer_later_message_wins_and_the_loser_is_superseded():
    sync = ApproximateTimeSync(slop=0.1)
    pairs = _run(sync, [("thermal", 1.0, "t0"), ("thermal", 1.09, "t1"), ("rgb", 1.08, "r0"), ("thermal", 1.2, "t2")])
    assert [(p.thermal, p.rgb) for p in pairs] == [("t1", "r0")]
    assert sync.stats()["drop_reasons"] == {"thermal/superseded": 1, "thermal/unmatched": 1}


def test_queue_overflow_bounds_memory_and_counts():
    sync = ApproximateTimeSync(slop=0.05, queue_size=3)
    for i in range(10):  # the thermal camera is silent
        assert sync.push_rgb(i * 0.1, i) == []
    assert sync.pending() == (0, 3)
    assert sync.stats()["drop_reasons"] == {"rgb/overflow": 7}
    pairs = sync.push_thermal(0.9, "t") + sync.flush()
    assert [(p.thermal, p.rgb) for p in pairs] == [("t", 9)]


def test_bad_parameters_rejected():
    with pytest.raises(ValueError, match="slop"):
        ApproximateTimeSync(slop=-1)
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimeSync(queue_size=0)
    with pytest.raises(ValueError, match="finite"):
        ApproximateTimeSync().push_rgb(float("nan"), None)
