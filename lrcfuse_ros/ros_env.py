"""Environment that keeps ROS 2 traffic on this machine (tests, CI, the demo).

``loopback_env(domain_id)`` returns the variables to set before ``rclpy.init`` (or for a child
process): localhost-only discovery, the domain, Fast DDS as the middleware and the loopback
profile (UDP bound to 127.0.0.1, shared memory with a large segment). ROS-free.
"""

from __future__ import annotations

import os
from pathlib import Path

PROFILE_NAME = "fastdds_loopback.xml"
ROBOT_PROFILE_NAME = "fastdds_large_shm.xml"


def package_path(*parts: str) -> Path:
    """A shipped file or folder (``config/...``, ``samples``): the source checkout's, else the installed share's."""
    repo = Path(__file__).resolve().parents[1].joinpath(*parts)
    if repo.exists():
        return repo
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("lrcfuse_ros")).joinpath(*parts)
    except Exception as exc:  # no ament index: say where we looked
        raise FileNotFoundError(f"{repo} not found, nor an installed lrcfuse_ros package") from exc


def loopback_env(domain_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) plus the loopback-only ROS variables for ``domain_id``."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "ROS_DOMAIN_ID": str(domain_id),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            "FASTDDS_DEFAULT_PROFILES_FILE": str(package_path("config", PROFILE_NAME)),
        }
    )
    env.pop("ROS_STATIC_PEERS", None)  # peers elsewhere would defeat the point
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; the discovery range above replaces it
    return env
