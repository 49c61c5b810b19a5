"""lrcfuse_model.cli_checks: what the command checks before it runs (hostile cases: tests/test_hostile_inputs.py)."""

from __future__ import annotations

import os

import pytest

from lrcfuse_model.cli_checks import check_output, signal_exit_code
from lrcfuse_model.config import ConfigError


def test_ordinary_outputs_pass(tmp_path, monkeypatch):
    (tmp_path / "existing_dir").mkdir()
    (tmp_path / "model.onnx").write_bytes(b"old export")
    check_output(str(tmp_path / "new" / "deeper" / "out"), "dir", "--out")  # created when missing
    check_output(str(tmp_path / "existing_dir"), "dir", "--out")
    check_output(str(tmp_path / "model.onnx"), "file", "--out")  # an existing output file is replaced
    monkeypatch.chdir(tmp_path)
    check_output("relative.json", "file", "--json")
    check_output("", "file", "--json")  # empty: the command's default


def test_a_link_to_an_input_folder_is_that_folder(tmp_path):
    (tmp_path / "vi").mkdir()
    os.symlink(tmp_path / "vi", tmp_path / "link")
    inputs = [("fuse", "vi", str(tmp_path / "vi"))]
    with pytest.raises(ConfigError, match=r"--out .*link is the input --vi \(fuse.vi\)"):
        check_output(str(tmp_path / "link"), "dir", "--out", inputs)
    with pytest.raises(ConfigError, match="is inside the input"):
        check_output(str(tmp_path / "link" / "sub"), "dir", "--out", inputs)


def test_a_shipped_model_name_is_not_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()  # a folder that happens to be named like the shipped model
    check_output("default/out", "dir", "--out", [("fuse", "model", "default")])
    (tmp_path / "w.pt").write_bytes(b"weights")
    with pytest.raises(ConfigError, match=r"is the input --model \(fuse.model\)"):
        check_output("w.pt", "file", "--out", [("fuse", "model", "w.pt")])


@pytest.mark.parametrize("stopped_by, code", [("SIGINT", 130), ("SIGTERM", 143), ("steps", 0), ("time_budget", 0)])
def test_signal_exit_codes(stopped_by, code):
    assert signal_exit_code(stopped_by) == code
