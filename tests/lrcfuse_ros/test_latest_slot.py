"""The one-slot buffer between the callbacks and the inference thread."""

from __future__ import annotations

import threading

from lrcfuse_ros.latest_slot import LatestSlot


def test_newer_item_replaces_the_waiting_one_and_is_counted() -> None:
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.replaced == 2
    assert slot.take(0) == 3
    assert slot.take(0.01) is None


def test_take_waits_for_an_item_and_close_wakes_it() -> None:
    slot = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take(5)))
    t.start()
    slot.put("pair")
    t.join(5)
    assert got == ["pair"]
    t = threading.Thread(target=lambda: got.append(slot.take(5)))
    t.start()
    slot.close()
    t.join(5)
    assert not t.is_alive() and got[-1] is None and slot.closed
