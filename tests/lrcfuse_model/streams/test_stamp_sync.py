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


# -- min_interval: the inter-message lower bound (message_filters' setInterMessageLowerBound) ----------


def _free_running(n: int, rate: float, jitter: float, rng: np.random.Generator, offset: float = 0.0) -> np.ndarray:
    """Stamps of a camera sending every 1/rate s, each stamp up to ``jitter`` s before its send."""
    return 1_700_000_000.0 + offset + np.arange(n) / rate - rng.uniform(0.0, jitter, n)


def _run_timed(sync: ApproximateTimeSync, events: list[tuple[str, float, object]]) -> list[tuple[int, StampedPair]]:
    """(index of the event whose push emitted the pair, pair); flush counts as len(events)."""
    out: list[tuple[int, StampedPair]] = []
    for k, (stream, stamp, item) in enumerate(events):
        pushed = sync.push_thermal(stamp, item) if stream == "thermal" else sync.push_rgb(stamp, item)
        out += [(k, p) for p in pushed]
    out += [(len(events), p) for p in sync.flush()]
    return out


def test_min_interval_releases_a_pair_when_its_second_member_arrives():
    # 30 Hz cameras: frames at least 23 ms apart; a 4 ms gap is certain at once with a 20 ms bound.
    sync = ApproximateTimeSync(slop=0.05, min_interval=0.02)
    assert sync.push_thermal(1.0, "t0") == []
    assert [(p.thermal, p.rgb) for p in sync.push_rgb(1.004, "r0")] == [("t0", "r0")]
    assert [(p.thermal, p.rgb) for p in sync.push_rgb(1.037, "r1") + sync.push_thermal(1.029, "t1")] == [("t1", "r1")]
    # without the bound the same pair waits for the next frame
    plain = ApproximateTimeSync(slop=0.05)
    assert plain.push_thermal(1.0, "t0") == [] and plain.push_rgb(1.004, "r0") == []
    assert [(p.thermal, p.rgb) for p in plain.push_thermal(1.033, "t1")] == [("t0", "r0")]


def test_min_interval_waits_when_a_later_message_could_still_be_nearer():
    sync = ApproximateTimeSync(slop=0.05, min_interval=0.02)
    assert sync.push_thermal(1.0, "t0") == []
    # r0 is 15 ms after t0: a thermal frame at >= 1.02 could be 5 ms from r0, nearer than t0 is
    assert sync.push_rgb(1.015, "r0") == []
    assert [(p.thermal, p.rgb) for p in sync.push_thermal(1.021, "t1")] == [("t1", "r0")]
    assert sync.stats()["drop_reasons"] == {"thermal/superseded": 1}


def test_min_interval_zero_is_the_rule_without_a_bound():
    """min_interval=0: the same pairs, emitted at the same pushes, as the sync without the parameter,
    on free-running, missing-frame and different-rate streams (the behaviour the other tests pin down)."""
    rng = np.random.default_rng(21)
    scenarios = []
    for _ in range(6):
        thermal = _free_running(80, 30.0, 0.01, rng)
        rgb = _free_running(80, 30.0, 0.01, rng, offset=rng.uniform(-0.02, 0.02))
        thermal = thermal[rng.random(80) > 0.1]
        scenarios.append(_arrivals(thermal, rgb, rng))
    scenarios.append(_arrivals(_free_running(30, 9.0, 0.003, rng), _free_running(90, 30.0, 0.003, rng), rng))
    for events in scenarios:
        ref = _run_timed(ApproximateTimeSync(slop=0.02, queue_size=10), events)
        got = _run_timed(ApproximateTimeSync(slop=0.02, queue_size=10, min_interval=0.0), events)
        assert [(k, p.thermal, p.rgb) for k, p in got] == [(k, p.thermal, p.rgb) for k, p in ref]
        assert len(ref) > 0


def _assert_no_later_message_beats(timed: list[tuple[int, StampedPair]], events: list) -> None:
    """No message arriving after a pair was emitted is nearer to one of its members than its partner."""
    for k, pair in timed:
        gap = abs(pair.thermal_stamp - pair.rgb_stamp)
        for stream, stamp, _ in events[k + 1 :]:
            other = pair.rgb_stamp if stream == "thermal" else pair.thermal_stamp
            assert abs(stamp - other) >= gap, (pair, stream, stamp)


@pytest.mark.parametrize("seed", range(8))
def test_min_interval_never_releases_a_pair_a_later_message_would_beat(seed):
    """Streams that keep the bound: the same pairs as waiting for proof, each emitted no later, none
    of them beaten by a message that arrived after it was emitted."""
    rng = np.random.default_rng(100 + seed)
    rate_t, rate_r = [(30.0, 30.0), (9.0, 30.0), (60.0, 30.0), (25.0, 30.0)][seed % 4]
    jitter = 0.008
    bound = 1.0 / max(rate_t, rate_r) - jitter  # the smallest gap these cameras can produce
    thermal = _free_running(60, rate_t, jitter, rng, offset=rng.uniform(-0.03, 0.03))
    rgb = _free_running(int(60 * rate_r / rate_t), rate_r, jitter, rng)
    thermal = thermal[rng.random(thermal.size) > 0.05]  # some frames missing
    assert np.diff(thermal).min() >= bound and np.diff(rgb).min() >= bound
    events = _arrivals(thermal, rgb, rng, latency=0.03)
    # queues long enough that waiting for proof never overflows (a 9 Hz thermal camera with missing
    # frames holds many RGB frames back; early release holds fewer, so it would keep pairs waiting loses)
    waited = _run_timed(ApproximateTimeSync(slop=0.03, queue_size=50), events)
    early = _run_timed(ApproximateTimeSync(slop=0.03, queue_size=50, min_interval=bound), events)
    assert [(p.thermal, p.rgb) for _, p in early] == [(p.thermal, p.rgb) for _, p in waited]
    assert all(k_early <= k_waited for (k_early, _), (k_waited, _) in zip(early, waited))
    assert sum(k_early < k_waited for (k_early, _), (k_waited, _) in zip(early, waited)) > 0
    _assert_no_later_message_beats(early, events)
    _assert_in_order([p for _, p in early], 0.03)


def test_min_interval_pairs_free_running_30hz_cameras_without_waiting_for_the_next_frame():
    """The demo's cameras: 30 Hz, stamps up to 10 ms before the send; with a 20 ms bound every pair is
    emitted by the push of its second member."""
    rng = np.random.default_rng(31)
    n = 300
    thermal, rgb = _free_running(n, 30.0, 0.01, rng), _free_running(n, 30.0, 0.01, rng)
    events = []
    for i in range(n):  # both cameras send at the same moment, in random order
        pair_events = [("thermal", float(thermal[i]), ("thermal", i)), ("rgb", float(rgb[i]), ("rgb", i))]
        events += pair_events if rng.random() < 0.5 else pair_events[::-1]
    timed = _run_timed(ApproximateTimeSync(slop=0.05, min_interval=0.02), events)
    assert [k for k, _ in timed] == [2 * i + 1 for i in range(n)]
    assert [(p.thermal[1], p.rgb[1]) for _, p in timed] == [(i, i) for i in range(n)]
    _assert_no_later_message_beats(timed, events)


def test_a_broken_bound_costs_the_better_pair_but_stays_in_order():
    sync = ApproximateTimeSync(slop=0.05, min_interval=0.03)
    assert sync.push_thermal(1.0, "t0") == []
    assert [(p.thermal, p.rgb) for p in sync.push_rgb(1.012, "r0")] == [("t0", "r0")]  # promised: thermal >= 1.03
    pairs = sync.push_thermal(1.011, "t1")  # too soon: nearer to r0 than t0 is, but r0 is taken
    pairs += sync.push_rgb(1.045, "r1") + sync.push_thermal(1.08, "t2") + sync.flush()
    assert [(p.thermal, p.rgb) for p in pairs] == [("t1", "r1")]
    assert sync.stats()["drop_reasons"] == {"thermal/unmatched": 1}


# -- time jumps (issue 13 item 10) ----------------------------------------------------------------


def _frames(first: float, n: int, lead: str = "thermal") -> list[tuple[str, float, object]]:
    """n frames of both cameras at 10 Hz with equal stamps from ``first``; ``lead``'s frame arrives first."""
    order = ("thermal", "rgb") if lead == "thermal" else ("rgb", "thermal")
    return [(stream, first + 0.1 * k, (first, k)) for k in range(n) for stream in order]


def _push_counting_frames(sync: ApproximateTimeSync, events: list) -> list[tuple[int, StampedPair]]:
    """Push events two at a time (one frame of each camera); each pair with the frame index it came out at."""
    out = []
    for k, (stream, stamp, item) in enumerate(events):
        push = sync.push_thermal if stream == "thermal" else sync.push_rgb
        out += [(k // 2, p) for p in push(stamp, item)]
    return out


@pytest.mark.parametrize("min_interval", [0.0, 0.05])
@pytest.mark.parametrize("lead", ["thermal", "rgb"])
def test_a_looping_bag_resets_pairing_and_fusing_resumes_within_two_frames(min_interval: float, lead: str):
    jumps: list[tuple] = []
    sync = ApproximateTimeSync(slop=0.02, min_interval=min_interval, on_jump=lambda *a: jumps.append(a))
    before = _push_counting_frames(sync, _frames(100.0, 20, lead))  # a 2 s recording ...
    assert len(before) >= 19
    after = _push_counting_frames(sync, _frames(100.0, 20, lead))  # ... played again: stamps go back 1.9 s
    assert after, "no pair after the jump"
    first_frame, first_pair = after[0]
    assert first_pair.thermal == (100.0, 0) and first_pair.rgb == (100.0, 0)  # the loop's first frame pairs
    assert first_frame <= 1  # out by the time the second frame after the jump arrived
    assert [(p.thermal[1], p.rgb[1]) for _, p in after] == [(k, k) for k in range(len(after))]
    assert len(after) >= 19
    assert sync.time_jumps == {"thermal": 1, "rgb": 1}
    assert sorted((stream, round(previous - stamp, 3)) for stream, previous, stamp, _ in jumps) == [
        ("rgb", 1.9),
        ("thermal", 1.9),
    ]
    assert sync.stats()["time_jumps"] == {"thermal": 1, "rgb": 1}


def test_one_camera_restarting_before_the_other_pairs_again_once_both_have():
    """The thermal camera restarts 3 frames before the RGB camera: no pair across timelines, and each
    camera's first frame on the new timeline pairs."""
    sync = ApproximateTimeSync(slop=0.02, min_interval=0.05)
    assert len(_push_counting_frames(sync, _frames(500.0, 10))) == 10
    events = [("thermal", 10.0 + 0.1 * k, ("new", k)) for k in range(3)]
    events += [("rgb", 501.0 + 0.1 * k, ("old", k)) for k in range(3)]  # RGB still on its old clock
    events += [e for e in _frames(10.3, 5) if e[0] == "rgb"]
    events += [e for e in _frames(10.3, 5) if e[0] == "thermal"]
    pairs = _run(sync, events, flush=False)
    assert pairs and all(abs(p.thermal_stamp - p.rgb_stamp) <= 0.02 + 1e-6 for p in pairs)
    assert [round(p.rgb_stamp, 3) for p in pairs] == [10.3, 10.4, 10.5, 10.6, 10.7]
    assert sync.time_jumps == {"thermal": 1, "rgb": 1}


def test_a_small_step_back_is_a_late_message_not_a_jump():
    sync = ApproximateTimeSync(slop=0.05)
    _run(sync, [("thermal", 5.0, "t"), ("rgb", 5.0, "r")], flush=False)
    assert sync.push_thermal(4.2, "late") == []  # 0.8 s back: within JUMP_BACK_S
    assert sync.stats()["drop_reasons"] == {"thermal/too_old": 1} and not sync.time_jumps
    with pytest.raises(ValueError, match="jump_back must be a number of seconds > 0"):
        ApproximateTimeSync(jump_back=0)
