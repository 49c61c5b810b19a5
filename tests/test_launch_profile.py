"""The launch file's Fast DDS profile choice: fastdds_profile given > the user's FASTDDS_DEFAULT_PROFILES_FILE > ours.

`launch` has no PyPI wheel, so the file cannot be imported here: the function is taken from its source
(ast) and run with the one name it needs from ament (the package's share folder) given as a plain value.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "fusion.launch.py"


def _fastdds_profile():
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_fastdds_profile"]
    namespace = {"os": os, "PACKAGE": "lrcfuse_ros", "get_package_share_directory": lambda package: f"/share/{package}"}
    exec(compile(ast.Module(body=[func], type_ignores=[]), str(LAUNCH_FILE), "exec"), namespace)
    return namespace["_fastdds_profile"]


def test_a_users_own_profile_is_kept_unless_fastdds_profile_is_given() -> None:
    choose = _fastdds_profile()
    own = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/robot/fastdds.xml"}
    assert choose("", own) == ""  # nothing set: the node inherits the user's variable
    assert choose("/tmp/mine.xml", own) == "/tmp/mine.xml"
    assert choose("", {}) == "/share/lrcfuse_ros/config/fastdds_large_shm.xml"
    assert choose("/tmp/mine.xml", {}) == "/tmp/mine.xml"
