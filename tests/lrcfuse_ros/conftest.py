"""Fixtures of the ROS tests: a loopback-only ROS environment and an rclpy context per test.

Every test that starts DDS gets its own ROS_DOMAIN_ID, localhost-only discovery and the Fast DDS
profile config/fastdds_loopback.xml (UDP bound to 127.0.0.1), set before rclpy.init. CI also runs
the suite inside a private network namespace (`unshare -n`), where loopback is the only interface.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from lrcfuse_ros.ros_env import loopback_env

# Spread domains by process id so concurrent test runs on one machine do not share one.
ROS_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE")
_DOMAINS = itertools.count((os.getpid() * 7) % 50)


def next_domain_id() -> int:
    """A domain id in 50..99 (inside ROS's safe 0..101), different for each of 50 calls in this process."""
    return 50 + next(_DOMAINS) % 50


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The loopback-only ROS environment for this test (also set in os.environ for in-process rclpy)."""
    env = loopback_env(next_domain_id())
    for key in ROS_KEYS:
        monkeypatch.setenv(key, env[key])
    for key in ("ROS_STATIC_PEERS", "ROS_LOCALHOST_ONLY"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def ros_context(ros_env: dict[str, str]) -> Iterator[object]:
    """An initialised rclpy Context on this test's domain, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
