"""The Fast DDS profile the node applies when the user has chosen none (ROS-free: it only sets a variable)."""

from __future__ import annotations

from pathlib import Path

from lrcfuse_ros.dds_profile import PROFILE_VARIABLE, apply_default_profile


def test_the_shipped_profile_is_set_only_where_nothing_else_chose_one(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    path = apply_default_profile(env, cwd=tmp_path)
    assert path is not None and path.endswith("fastdds_large_shm.xml") and Path(path).is_file()
    assert env[PROFILE_VARIABLE] == path
    assert "<segment_size>67108864</segment_size>" in Path(path).read_text()

    own = {PROFILE_VARIABLE: "/etc/robot/fastdds.xml"}
    assert apply_default_profile(own, cwd=tmp_path) is None and own[PROFILE_VARIABLE] == "/etc/robot/fastdds.xml"

    cyclone = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert apply_default_profile(cyclone, cwd=tmp_path) is None and PROFILE_VARIABLE not in cyclone

    (tmp_path / "DEFAULT_FASTDDS_PROFILES.xml").write_text("<dds/>")
    local: dict[str, str] = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert apply_default_profile(local, cwd=tmp_path) is None and PROFILE_VARIABLE not in local
