"""A one-slot buffer between the subscription callbacks and the inference threads, and their publishing order.

When inference is slower than the cameras only the newest pair is worth fusing: ``put`` replaces
a pair still waiting (and counts it as dropped), so memory stays bounded at one waiting pair and the
published stream never lags behind the cameras by more than one inference per inference thread.
Pairs that come out of the pairing together (a late frame completing one pair, the next already
complete) are not dropped while an inference thread waits to take them: the slot keeps one pair per
waiting thread plus the newest.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class LatestSlot:
    """Holds the newest item, and one more per thread waiting in :meth:`take`; ``put`` drops the oldest beyond."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()
        self._takers = 0  # threads waiting in take (each takes one item when it wakes)
        self._closed = False
        self.replaced = 0  # items that were replaced before anyone took them

    def put(self, item: Any) -> bool:
        """Store ``item``; True when it replaced an item nobody had taken (that one is dropped)."""
        with self._cond:
            self._items.append(item)
            replaced = len(self._items) > 1 + self._takers
            if replaced:
                self._items.popleft()
                self.replaced += 1
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The oldest waiting item (removing it), or None after ``timeout`` seconds or once closed."""
        with self._cond:
            if not self._items and not self._closed:
                self._takers += 1
                try:
                    self._cond.wait(timeout)
                finally:
                    self._takers -= 1
            if not self._items:
                return None
            return self._items.popleft()

    def close(self) -> None:
        """Wake any waiting ``take`` (it returns None when the slot is empty)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class InOrder:
    """Lets numbered jobs (0, 1, 2 ...) finish in number order, whichever order they reach the end in.

    With several inference threads a later pair may be ready before an earlier one: ``wait(n)`` blocks
    until every job before ``n`` is ``done``; ``done(n)`` (also for a job that failed) lets the next go.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._finished: set[int] = set()
        self._closed = False

    def wait(self, n: int, timeout: float | None = None) -> bool:
        """True once jobs ``0 .. n-1`` are done (False after ``timeout`` seconds or once closed)."""
        with self._cond:
            return bool(self._cond.wait_for(lambda: self._next >= n or self._closed, timeout)) and self._next >= n

    def done(self, n: int) -> None:
        with self._cond:
            self._finished.add(n)
            while self._next in self._finished:
                self._finished.discard(self._next)
                self._next += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiting ``wait`` (they return False)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
