"""lrcfuse_model.cli: the ``lrcfuse`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrcfuse_model.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("command", "flags", "help_text"),
    [
        (
            "fuse",
            ("--ir", "--vi", "--out", "--weights", "--config", "--thermal-norm", "--size-mismatch"),
            "percentile | fixed | minmax | none",
        ),
        (
            "eval",
            ("--methods", "--datasets", "--data-root", "--out", "--weights", "--grid-images", "--zoom"),
            "{dataset}",
        ),
    ],
)
def test_subcommand_help_lists_options(capsys, command, flags, help_text):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in flags:
        assert flag in out
    assert help_text in out  # help text comes from default.yaml


def test_train_help_lists_every_section(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--data",
        "--steps",
        "--resume",
        "--code-channels",
        "--feature-net",
        "--sobel-target",
        "--thermal-norm",
    ):
        assert flag in out


def test_unknown_option_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--bogus"])
    assert info.value.code != 0
    assert "--bogus" in capsys.readouterr().err


def test_wrong_option_type_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--steps", "many"])
    assert info.value.code != 0
    assert "--steps" in capsys.readouterr().err


def test_config_file_with_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("fuse:\n  wieghts: x.pt\n")
    code = main(["fuse", "--config", str(cfg), "--ir", "a", "--vi", "b", "--out", "c"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown config key 'fuse.wieghts'" in err
    assert "Did you mean 'fuse.weights'?" in err


def test_fuse_needs_ir(capsys):
    assert main(["fuse", "--vi", "b", "--out", "c"]) == 2
    assert "needs --ir" in capsys.readouterr().err


def test_fuse_missing_weights(tiny_dataset, tmp_path, capsys):
    missing = tmp_path / "missing.pt"
    code = main(
        [
            "fuse",
            "--ir",
            str(tiny_dataset / "ir"),
            "--vi",
            str(tiny_dataset / "vi"),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(missing),
        ]
    )
    assert code == 2
    assert str(missing) in capsys.readouterr().err


def fuse_args(data, out, weights):
    return [
        "fuse",
        "--ir",
        str(data / "ir"),
        "--vi",
        str(data / "vi"),
        "--out",
        str(out),
        "--weights",
        str(weights),
        "--threads",
        "1",
    ]


def test_fuse_folders(tiny_dataset, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(fuse_args(tiny_dataset, out, tiny_weights)) == 0
    for name in ("p0", "p1", "p2"):
        img = np.asarray(Image.open(out / f"{name}.png"))
        assert img.shape == (40, 48) and img.dtype == np.uint8
    report = json.loads((out / "report.json").read_text())
    assert report["n_fused"] == 3 and report["n_failed"] == 0
    assert "fused 3 pairs" in capsys.readouterr().out


def test_fuse_folders_with_a_corrupt_pair(tiny_dataset, tiny_weights, tmp_path, capsys):
    (tiny_dataset / "vi" / "p1.png").write_bytes(b"corrupt")
    out = tmp_path / "out"
    assert main(fuse_args(tiny_dataset, out, tiny_weights)) == 1
    assert (out / "p0.png").is_file() and (out / "p2.png").is_file()
    assert not (out / "p1.png").exists()
    err = capsys.readouterr().err
    assert "1 pairs FAILED" in err and "p1" in err
    report = json.loads((out / "report.json").read_text())
    assert report["n_fused"] == 2 and [r["name"] for r in report["failed"]] == ["p1"]


def test_fuse_single_pair(tiny_dataset, tiny_weights, tmp_path, capsys):
    out = tmp_path / "single" / "fused.png"
    args = [
        "fuse",
        "--ir",
        str(tiny_dataset / "ir" / "p0.png"),
        "--vi",
        str(tiny_dataset / "vi" / "p0.png"),
        "--out",
        str(out),
        "--weights",
        str(tiny_weights),
    ]
    assert main(args) == 0
    assert np.asarray(Image.open(out)).shape == (40, 48)
    (tiny_dataset / "ir" / "p1.png").write_bytes(b"corrupt")
    args[2] = str(tiny_dataset / "ir" / "p1.png")
    args[4] = str(tiny_dataset / "vi" / "p1.png")
    assert main(args) == 1
    assert "not a readable image" in capsys.readouterr().err


def test_train_command(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(tiny_dataset),
        "--out",
        str(out),
        "--steps",
        "2",
        "--patch-size",
        "32",
        "--batch-size",
        "2",
        "--feature-net",
        "none",
        "--code-channels",
        "4",
        "--feature-channels",
        "4",
        "--decoder-channels",
        "4",
        "4",
        "--llrr-blocks",
        "2",
        "--cfpm-stages",
        "2",
        "--threads",
        "1",
    ]
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(1)
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and summary["parameters"] == 2841
    assert (out / "weights.pt").is_file() and (out / "last.pt").is_file()


def test_module_entry_point_help():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "lrcfuse_model.cli", "fuse", "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--ir" in result.stdout and "--vi" in result.stdout and "--out" in result.stdout
