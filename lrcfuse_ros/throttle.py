"""Warnings throttled per kind: a burst of bad frames gives one line per kind and period, with a count.

rclpy's own ``throttle_duration_sec`` throttles per call site, so a wrong encoding on one topic would
hide a size mismatch on the other; here every kind (e.g. ``("thermal/image_raw", "convert")``) has
its own clock and the next line says how many similar messages were held back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class KeyedThrottle:
    """``ready(key)`` is True at most once per ``period`` seconds for each key."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def ready(self, key: Hashable) -> tuple[bool, int]:
        """(emit now?, how many were suppressed since the last emitted one)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False, 0
        self._last[key] = now
        return True, self._suppressed.pop(key, 0)

    def log(self, key: Hashable, emit: Callable[[str], object], message: str) -> bool:
        """Call ``emit(message)`` if ``key`` is due, noting the suppressed count; True when emitted."""
        due, suppressed = self.ready(key)
        if due:
            if suppressed:
                message += f" ({suppressed} similar message{'s' if suppressed > 1 else ''} suppressed)"
            emit(message)
        return due
