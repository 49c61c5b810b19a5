"""lrcfuse_model.reporting: files, Markdown tables, bar and PR-curve panels, comparison grids with a zoomed inset."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from lrcfuse_model.config import ConfigError
from lrcfuse_model.reporting import (
    bar_panels,
    cell,
    choose_zoom_box,
    json_safe,
    make_grid,
    markdown_table,
    percent,
    pr_curve_panels,
    spaced_indices,
    write_csv,
    write_json,
)


def test_cells_and_markdown_table():
    assert cell(1.23456, ".3f") == "1.235" and cell(math.nan, ".3f") == "n/a" and cell(None, "g") == "n/a"
    assert percent(0.4567) == "45.7" and percent(None) == "n/a" and percent(math.inf) == "n/a"
    assert markdown_table(["a", "b"], [["1", "2"], ["3", "**4**"]]) == [
        "| a | b |",
        "|---|---|",
        "| 1 | 2 |",
        "| 3 | **4** |",
    ]


def test_csv_and_json_files(tmp_path):
    rows = [{"name": "a", "x": 1 / 3, "extra": 1}, {"name": "b", "x": math.nan}]
    path = write_csv(tmp_path / "t.csv", ["name", "x"], rows)
    assert list(csv.DictReader(open(path))) == [{"name": "a", "x": "0.33333333"}, {"name": "b", "x": ""}]
    written = write_json(tmp_path / "sub" / "r.json", json_safe({"v": [math.nan, 1.5], "p": tmp_path}))
    assert json.loads(written.read_text()) == {"v": [None, 1.5], "p": str(tmp_path)}
    assert written.read_text().startswith('{\n  "v"')  # indented by 2


def test_spaced_indices():
    assert spaced_indices(10, 4) == [0, 3, 6, 9]
    assert spaced_indices(3, 10) == [0, 1, 2]
    assert spaced_indices(0, 4) == spaced_indices(5, 0) == []


def test_bar_and_pr_curve_panels(tmp_path):
    rows = [{"method": m, "A_mean": v, "A_std": 0, "B_mean": v / 2, "B_std": math.nan} for m, v in (("x", 1), ("y", 3))]
    path = bar_panels(rows, ["A", "B"], tmp_path / "bars.png", "t", lower_is_better=["B"], columns=2)
    with Image.open(path) as im:
        assert im.size[0] > 100

    class Curve:
        def __init__(self, name, ap):
            self.name, self.map50, self.precision50 = name, ap, np.linspace(1, 0, 11)

    path = pr_curve_panels({"ir": [Curve("car", 0.5), Curve("all", 0.5)]}, np.linspace(0, 1, 11), tmp_path / "pr.png")
    with Image.open(path) as im:
        assert im.size[0] > im.size[1]


def test_zoom_box_finds_hot_target_and_grid(tmp_path):
    rng = np.random.default_rng(0)
    ir = rng.integers(40, 60, (120, 160), dtype=np.uint8)
    ir[70:82, 110:118] = 250  # a hot target
    x, y, w, h = choose_zoom_box(ir)
    assert w == h == 24
    assert x <= 110 and x + w >= 118 and y <= 70 and y + h >= 82
    assert 0 <= x <= 160 - w and 0 <= y <= 120 - h
    vi = np.dstack([ir] * 3)
    row = {"name": "t", "ir": ir, "vi": vi, "fused": {"a": ir}}
    path = make_grid([row], ["a", "b"], tmp_path / "grid.png", zoom_box=[0.1, 0.1, 0.2, 0.2])
    with Image.open(path) as im:
        assert im.size[0] > im.size[1] > 100
    with pytest.raises(ConfigError, match="zoom_box"):
        make_grid([row], ["a"], tmp_path / "g2.png", zoom_box=[0.5, 0.5])
