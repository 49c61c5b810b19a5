"""lrcfuse_ros.console: the ROS console scripts say in one line what is missing instead of a traceback, and run
their module's main otherwise; setup.py installs every ROS script through them."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from lrcfuse_ros import console

ROOT = Path(__file__).resolve().parents[2]


def console_scripts() -> dict[str, str]:
    """setup.py's console_scripts: name -> target (read, never run)."""
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            scripts = ast.literal_eval(node.value)["console_scripts"]
            return dict(tuple(p.strip() for p in s.split("=")) for s in scripts)
    raise AssertionError("setup.py has no entry_points")


def test_every_ros_script_goes_through_the_check():
    scripts = console_scripts()
    ros = {name: target for name, target in scripts.items() if target.startswith("lrcfuse_ros.")}
    assert set(ros) == {"fusion_node", "sample_publisher", "fused_recorder"}
    for name, target in ros.items():
        assert target == f"lrcfuse_ros.console:{name}"
        assert callable(getattr(console, name))


@pytest.mark.parametrize("missing", ["rclpy", "sensor_msgs"])
def test_without_ros_one_line_and_exit_2(missing, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # as after a plain `pip install .`, ROS not sourced
    assert console.fusion_node() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"fusion_node: error: fusion_node needs {missing}, which is not")
    assert 'pip install "lrcfuse_ros[ros]"' in err and "source its setup.bash" in err


def test_with_ros_the_script_runs_its_main(monkeypatch, capsys):
    pytest.importorskip("rclpy", reason='rclpy wheels not installed (pip install "lrcfuse_ros[ros]")')
    monkeypatch.setattr(sys, "argv", ["sample_publisher", "--help"])
    with pytest.raises(SystemExit) as done:  # argparse of the real sample_publisher.main
        console.sample_publisher()
    assert done.value.code == 0 and "usage: sample_publisher" in capsys.readouterr().out
