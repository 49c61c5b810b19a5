"""The Fast DDS profile the node applies to its own participant when the user has chosen none.

Fast DDS's default shared-memory segment (512 KiB) cannot hold one 640x512 bgr8 frame (960 KiB): a
writer with it sends large images as fragments that overwrite each other in its segment, and a
best-effort subscriber loses whole images (measured: ``benchmarks/ros_loss.py``, README "QoS and Fast
DDS"). The node writes fused images, so its participant gets the shipped
``config/fastdds_large_shm.xml`` (64 MiB segment, UDP kept for other machines) unless
FASTDDS_DEFAULT_PROFILES_FILE is already set (the user's choice: kept), Fast DDS's own
``DEFAULT_FASTDDS_PROFILES.xml`` is in the working directory, or another middleware is selected.
ROS-free: it only sets an environment variable, before ``rclpy.init`` loads Fast DDS.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from .ros_env import ROBOT_PROFILE_NAME, package_path

PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")


def apply_default_profile(environ: MutableMapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Set FASTDDS_DEFAULT_PROFILES_FILE to the shipped profile where nothing else chose one; returns the path set.

    None when it was left alone (already set, a DEFAULT_FASTDDS_PROFILES.xml in ``cwd``, not Fast DDS).
    Fast DDS is ROS 2's default middleware, so an unset RMW_IMPLEMENTATION counts as Fast DDS.
    """
    env = os.environ if environ is None else environ
    if env.get(PROFILE_VARIABLE):
        return None
    if env.get("RMW_IMPLEMENTATION", FASTDDS_RMWS[0]) not in FASTDDS_RMWS:
        return None
    if ((cwd or Path.cwd()) / "DEFAULT_FASTDDS_PROFILES.xml").is_file():
        return None
    try:
        path = str(package_path("config", ROBOT_PROFILE_NAME))
    except FileNotFoundError:
        return None  # an install without the config folder: Fast DDS's defaults, as before
    env[PROFILE_VARIABLE] = path
    return path
