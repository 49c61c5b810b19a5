"""The one-slot buffer between the callbacks and the inference thread."""

from __future__ import annotations

import threading

from lrcfuse_ros.latest_slot import InOrder, LatestSlot


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


def test_in_order_lets_later_jobs_wait_for_earlier_ones() -> None:
    order = InOrder()
    published: list[int] = []

    def job(n: int, delay: float) -> None:
        threading.Event().wait(delay)
        if order.wait(n, timeout=5):
            published.append(n)
        order.done(n)

    threads = [threading.Thread(target=job, args=(n, d)) for n, d in ((0, 0.15), (1, 0.0), (2, 0.05))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert published == [0, 1, 2]
    order.done(4)  # a job that failed before its turn still lets the later ones go once 3 is done
    assert not order.wait(5, timeout=0.01)
    order.done(3)
    assert order.wait(5, timeout=0)
    order.close()
    assert not order.wait(99, timeout=1)  # closed: no waiting


def test_items_put_together_all_reach_a_waiting_taker_and_only_the_newest_waits() -> None:
    """Pairs completed by one message (the late one and the next) are not dropped while a thread waits."""
    slot = LatestSlot()
    got: list = []
    waiting = threading.Event()

    def taker() -> None:
        waiting.set()
        got.append(slot.take(5))

    t = threading.Thread(target=taker)
    t.start()
    waiting.wait(5)
    while slot._takers == 0:  # the taker is inside take(), waiting
        threading.Event().wait(0.001)
    assert slot.put("a") is False
    assert slot.put("b") is False  # the waiting thread takes "a"; "b" waits for the next one
    t.join(5)
    assert got == ["a"] and slot.replaced == 0
    assert slot.put("c") is True  # nobody waiting: the newest replaces "b"
    assert slot.take(0) == "c" and slot.replaced == 1
