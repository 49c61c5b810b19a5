"""Approximate-time pairing of two streams (thermal, RGB) by header stamp, without ROS.

One component for the live node and for the offline bag tool (``message_filters`` has no wheels).

Policy (mutual nearest neighbours, emitted as soon as they are certain):

* Each stream keeps up to ``queue_size`` waiting messages sorted by stamp, so messages that arrive
  out of order still pair while they wait: one stream lagging the other by up to ``queue_size``
  frames, or a stream that is shuffled while the other has not caught up with it. A message that
  arrives after a later pair on its own stream was emitted is too old (below).
* A thermal message ``t`` and an RGB message ``r`` form a pair when ``|t - r| <= slop`` (+1 us for
  float rounding), ``r`` is the waiting RGB message nearest to ``t`` and ``t`` the waiting thermal
  message nearest to ``r`` (ties go to the earlier stamp).
* The pair is emitted once no message still to come can be nearer to either of them, assuming
  each stream goes on in stamp order: the stream of the older member has delivered a stamp at
  least ``|t - r|`` past the newer member (with equal stamps this holds at once, so hardware-
  synchronised cameras pair with no added latency; otherwise the wait is about one frame of the
  older member's stream). :meth:`ApproximateTimeSync.flush` emits what is left at the end of a
  recording.
* ``min_interval`` (seconds, message_filters' inter-message lower bound): the smallest stamp gap
  between two messages of one stream that the cameras promise. With it the next message of a
  stream is known to come no earlier than its newest stamp + ``min_interval``, so a pair is emitted
  as soon as that bound already puts every message still to come at least ``|t - r|`` away:
  free-running cameras with ``|t - r| <= min_interval / 2`` pair as soon as the second member
  arrives, instead of one frame later. 0 (the default) assumes nothing: the rule above, exactly. A
  bound the cameras break (frames closer together than ``min_interval``) can cost a better pair
  (the message that came too soon pairs with a later partner, or is dropped); pairs still come out
  in order, within slop, each message used once.
* Each message is used at most once and pairs come out in stamp order on both streams. Emitting a
  pair drops every waiting message older than its member on the same stream ("superseded": it
  could only be paired out of order); a message whose stamp is not newer than the last emitted
  pair's on its stream is dropped on arrival ("too_old"); when a queue is full its oldest message
  is dropped ("overflow"). A message that never finds a partner within ``slop`` therefore leaves
  by one of these routes and is counted, never silently.

* Time jumps: a message more than ``jump_back`` seconds (default :data:`JUMP_BACK_S`) older than the
  newest stamp its stream has delivered means the stream's clock went back (a camera restarted, a bag
  looped, a simulated clock was reset), not a late message: without this every later message of the
  stream would be "too_old" until the old timeline is reached again. The stream starts afresh: its
  waiting messages are dropped ("time_jump"), what it had delivered and paired is forgotten, and the
  message is pushed as the first of the new timeline; ``on_jump(stream, previous_newest, stamp,
  dropped)`` is called and ``time_jumps[stream]`` counted. Each stream detects its own jump, so when
  both cameras restart (or a bag loops) pairing resumes with the first frame of each on the new
  timeline; until the second stream jumps too its old-timeline messages cannot pair (beyond slop).
  A smaller step back (up to ``jump_back``) stays "too_old": late delivery, or a clock step the
  stream soon outgrows.

Counters: ``paired``, ``dropped_thermal``, ``dropped_rgb``, ``drop_reasons`` (``(stream, reason)``
-> count) and ``time_jumps``; ``on_drop(stream, stamp, item, reason)`` is called for each dropped message.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

THERMAL = "thermal"
RGB = "rgb"
# Float seconds of an epoch stamp are only exact to ~0.2 us: compare against slop with this margin.
STAMP_TOLERANCE = 1e-6
# Seconds a stamp may go back on one stream before it counts as a time jump rather than a late message:
# well above any transport reordering, well below a camera restart or a bag's length.
JUMP_BACK_S = 1.0


@dataclass
class StampedPair:
    """A thermal and an RGB message whose stamps (seconds) differ by at most the slop."""

    thermal: Any
    rgb: Any
    thermal_stamp: float
    rgb_stamp: float


@dataclass
class _Entry:
    stamp: float
    seq: int  # arrival number: orders equal stamps by arrival
    item: Any


class _Stream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: list[_Entry] = []  # sorted by (stamp, seq)
        self.latest = -math.inf  # newest stamp ever pushed (since the last time jump)
        self.last_emitted = -math.inf

    def insert(self, entry: _Entry) -> None:
        bisect.insort(self.queue, entry, key=lambda e: (e.stamp, e.seq))
        self.latest = max(self.latest, entry.stamp)

    def nearest(self, stamp: float) -> int:
        """Index of the waiting message nearest to ``stamp`` (ties: the earlier one); queue non-empty."""
        i = bisect.bisect_left(self.queue, stamp, key=lambda e: e.stamp)
        if i == 0:
            return 0
        if i == len(self.queue):
            return i - 1
        return i - 1 if stamp - self.queue[i - 1].stamp <= self.queue[i].stamp - stamp else i


class ApproximateTimeSync:
    """Pairs thermal and RGB messages by stamp (see the module docstring for the policy)."""

    def __init__(
        self,
        slop: float = 0.05,
        queue_size: int = 10,
        on_drop: Callable[[str, float, Any, str], None] | None = None,
        min_interval: float = 0.0,
        jump_back: float = JUMP_BACK_S,
        on_jump: Callable[[str, float, float, int], None] | None = None,
    ) -> None:
        if not (isinstance(slop, (int, float)) and math.isfinite(slop) and slop >= 0):
            raise ValueError(f"slop must be a finite number of seconds >= 0, got {slop!r}")
        if not (isinstance(queue_size, int) and queue_size >= 1):
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        if not (isinstance(min_interval, (int, float)) and math.isfinite(min_interval) and min_interval >= 0):
            raise ValueError(f"min_interval must be a finite number of seconds >= 0, got {min_interval!r}")
        if not (isinstance(jump_back, (int, float)) and jump_back > 0):
            raise ValueError(f"jump_back must be a number of seconds > 0, got {jump_back!r}")
        self.slop = float(slop)
        self.jump_back = float(jump_back)
        self.on_jump = on_jump
        self.time_jumps: Counter[str] = Counter()
        self.queue_size = queue_size
        self.min_interval = float(min_interval)
        self.on_drop = on_drop
        self._streams = {THERMAL: _Stream(THERMAL), RGB: _Stream(RGB)}
        self._seq = 0
        self.paired = 0
        self.drop_reasons: Counter[tuple[str, str]] = Counter()

    @property
    def dropped_thermal(self) -> int:
        return sum(n for (stream, _), n in self.drop_reasons.items() if stream == THERMAL)

    @property
    def dropped_rgb(self) -> int:
        return sum(n for (stream, _), n in self.drop_reasons.items() if stream == RGB)

    def pending(self) -> tuple[int, int]:
        """Messages waiting for a partner: (thermal, rgb)."""
        return len(self._streams[THERMAL].queue), len(self._streams[RGB].queue)

    def stats(self) -> dict[str, Any]:
        """Counters as a plain dict (for logs, diagnostics and reports)."""
        return {
            "paired": self.paired,
            "dropped_thermal": self.dropped_thermal,
            "dropped_rgb": self.dropped_rgb,
            "drop_reasons": {f"{stream}/{reason}": n for (stream, reason), n in sorted(self.drop_reasons.items())},
            "pending_thermal": self.pending()[0],
            "pending_rgb": self.pending()[1],
            "time_jumps": dict(self.time_jumps),
        }

    def push_thermal(self, stamp: float, item: Any) -> list[StampedPair]:
        """Add a thermal message; returns the pairs that became certain (oldest first)."""
        return self._push(self._streams[THERMAL], stamp, item)

    def push_rgb(self, stamp: float, item: Any) -> list[StampedPair]:
        """Add an RGB message; returns the pairs that became certain (oldest first)."""
        return self._push(self._streams[RGB], stamp, item)

    def flush(self) -> list[StampedPair]:
        """End of input: emit the remaining pairs as if no message were to come, drop the rest."""
        pairs = self._match(final=True)
        for stream in self._streams.values():
            while stream.queue:
                self._drop(stream, stream.queue.pop(0), "unmatched")
        return pairs

    def _drop(self, stream: _Stream, entry: _Entry, reason: str) -> None:
        self.drop_reasons[(stream.name, reason)] += 1
        if self.on_drop is not None:
            self.on_drop(stream.name, entry.stamp, entry.item, reason)

    def _push(self, stream: _Stream, stamp: float, item: Any) -> list[StampedPair]:
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"{stream.name} stamp must be finite, got {stamp!r}")
        self._seq += 1
        entry = _Entry(stamp, self._seq, item)
        if stamp < stream.latest - self.jump_back:
            self._restart(stream, stamp)
        if stamp <= stream.last_emitted:
            stream.latest = max(stream.latest, stamp)
            self._drop(stream, entry, "too_old")
            return []
        stream.insert(entry)
        pairs = self._match(final=False)
        while len(stream.queue) > self.queue_size:
            self._drop(stream, stream.queue.pop(0), "overflow")
        return pairs

    def _restart(self, stream: _Stream, stamp: float) -> None:
        """The stream's clock went back: forget its old timeline (see the module docstring)."""
        previous, dropped = stream.latest, len(stream.queue)
        while stream.queue:
            self._drop(stream, stream.queue.pop(0), "time_jump")
        stream.latest = stream.last_emitted = -math.inf
        self.time_jumps[stream.name] += 1
        if self.on_jump is not None:
            self.on_jump(stream.name, previous, stamp, dropped)

    def _match(self, final: bool) -> list[StampedPair]:
        thermal, rgb = self._streams[THERMAL], self._streams[RGB]
        pairs: list[StampedPair] = []
        while thermal.queue and rgb.queue:
            found = self._earliest_mutual_pair()
            if found is None:
                break
            ti, ri = found
            t, r = thermal.queue[ti], rgb.queue[ri]
            gap = abs(t.stamp - r.stamp)
            # Could a message still to come (in stamp order, min_interval after its stream's newest) be
            # nearer to r (thermal) or to t (rgb)? With min_interval 0 the sums are the stamps themselves.
            certain = final or (
                thermal.latest + self.min_interval >= r.stamp + gap and rgb.latest + self.min_interval >= t.stamp + gap
            )
            if not certain:
                break
            for stream, index in ((thermal, ti), (rgb, ri)):
                for old in stream.queue[:index]:
                    self._drop(stream, old, "superseded")
                del stream.queue[: index + 1]
            thermal.last_emitted, rgb.last_emitted = t.stamp, r.stamp
            self.paired += 1
            pairs.append(StampedPair(t.item, r.item, t.stamp, r.stamp))
        return pairs

    def _earliest_mutual_pair(self) -> tuple[int, int] | None:
        """(thermal index, rgb index) of the oldest mutual-nearest pair within slop, if any."""
        thermal, rgb = self._streams[THERMAL], self._streams[RGB]
        for ti, t in enumerate(thermal.queue):
            ri = rgb.nearest(t.stamp)
            r = rgb.queue[ri]
            if abs(t.stamp - r.stamp) <= self.slop + STAMP_TOLERANCE and thermal.nearest(r.stamp) == ti:
                return ti, ri
        return None
