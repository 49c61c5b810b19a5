"""Helpers shared by the ROS test modules (not a test module; ``tests`` is on pytest's pythonpath).

Kept out of conftest.py because test modules import these directly: with ``--import-mode=importlib``
a conftest is not importable by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` every ``step`` seconds until it is true or ``timeout`` seconds pass; its last value.

    DDS delivery and discovery take a variable time on a loaded machine: tests wait for what they
    assert instead of sleeping a fixed time.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
