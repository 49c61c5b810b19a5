"""Node parameters at start-up and afterwards: invalid values stop the node, read-only descriptors (issue 13 item 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed (pip install lrcfuse_ros[ros])")

from rclpy.parameter import Parameter  # noqa: E402

from lrcfuse_ros.fusion_node import FusionNode  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "thermal_norm:=bogus"], "thermal_norm: expected one of percentile, fixed, minmax, none, got 'bogus'"),
        (["-p", "threads:=-3"], "threads: expected an integer >= 0, got -3"),
        (["-p", "thermal_percentiles:=[99.0, 1.0]"],
         "thermal_percentiles: expected 0 <= LOW < HIGH <= 100 (e.g. 1 99), got [99.0, 1.0]"),
        (["--params-file", "/nonexistent/fusion.yaml"],
         "failed to initialize rcl: Couldn't parse params file: '--params-file /nonexistent"),
    ],
    ids=["thermal_norm", "threads", "percentiles", "params_file"],
)  # fmt: skip
def test_an_invalid_value_stops_the_node_at_start_naming_it(ros_env, args: list[str], message: str) -> None:
    env = dict(ros_env, PYTHONPATH=str(REPO_ROOT), LRCFUSE_NO_MALLOC_TUNING="1")
    run = subprocess.run(
        [sys.executable, "-m", "lrcfuse_ros.fusion_node", "--ros-args", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"[lrcfuse_fusion] cannot start: {message}" in run.stderr
    assert "Traceback" not in run.stderr


def test_parameters_are_read_only_but_use_sim_time_still_works(ros_context, tiny_weights: Path) -> None:
    overrides = [Parameter("weights", value=str(tiny_weights)), Parameter("backend", value="torch"),
                 Parameter("slop", value=0.08)]  # fmt: skip
    node = FusionNode(context=ros_context, parameter_overrides=overrides)
    try:
        assert node.values["slop"] == 0.08  # overrides still set read-only parameters at declaration
        (refused,) = node.set_parameters([Parameter("slop", value=0.2)])
        assert not refused.successful and "read-only" in refused.reason
        assert node.get_parameter("slop").value == 0.08
        descriptor = node.describe_parameter("thermal_norm")
        assert descriptor.read_only and descriptor.additional_constraints == "one of: percentile, fixed, minmax, none"
        (accepted,) = node.set_parameters([Parameter("use_sim_time", value=True)])
        assert accepted.successful, accepted.reason
        assert node.get_clock().ros_time_is_active
    finally:
        node.destroy_node()
