"""A one-slot buffer between the subscription callbacks and the inference thread.

When inference is slower than the cameras only the newest pair is worth fusing: ``put`` replaces
a pair still waiting (and counts it as dropped), so memory stays bounded at one pair and the
published stream never lags behind the cameras by more than one inference.
"""

from __future__ import annotations

import threading
from typing import Any


class LatestSlot:
    """Holds at most one item; a newer ``put`` replaces the waiting one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._full = False
        self._closed = False
        self.replaced = 0  # items that were replaced before anyone took them

    def put(self, item: Any) -> bool:
        """Store ``item``; True when it replaced an item nobody had taken (that one is dropped)."""
        with self._cond:
            replaced = self._full
            if replaced:
                self.replaced += 1
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The waiting item (removing it), or None after ``timeout`` seconds or once closed."""
        with self._cond:
            if not self._full and not self._closed:
                self._cond.wait(timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake any waiting ``take`` (it returns None when the slot is empty)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
