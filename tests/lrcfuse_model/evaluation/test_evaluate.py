"""lrcfuse_model.evaluation and ``lrcfuse eval``: methods, metrics per image, failures, summaries, ranks, the report."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrcfuse_model.cli import main
from lrcfuse_model.config import ConfigError
from lrcfuse_model.evaluation.evaluate import evaluate
from lrcfuse_model.evaluation.methods import parse_methods, resolve_datasets
from lrcfuse_model.evaluation.metrics import METRIC_KEYS
from lrcfuse_model.evaluation.report import summary_markdown
from lrcfuse_model.evaluation.scoring import ALL_METHODS
from lrcfuse_model.evaluation.summary import rank_table, summarise

# VIF needs at least 41 pixels on each side: the 40 x 48 tiny_dataset is just too small for the metrics.
SIZE = (48, 56)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _main_table(markdown: str) -> list[list[str]]:
    """The cells of the first Markdown table (header first)."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    rows = []
    for ln in lines:
        if set(ln) <= {"|", "-"}:
            continue
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if rows and len(cells) != len(rows[0]):
            break
        rows.append(cells)
    return rows


@pytest.fixture
def eval_dataset(make_dataset) -> Path:
    return make_dataset("data", size_hw=SIZE)


def test_cli_end_to_end(eval_dataset, tiny_weights, tmp_path, capsys):
    other = tmp_path / "other"  # another method's outputs, lacking p1
    other.mkdir()
    for name in ("p0", "p2"):
        shutil.copy(eval_dataset / "vi" / f"{name}.png", other / f"{name}.png")
    out = tmp_path / "eval"
    code = main(
        ["eval", "--methods", "ours,average", "max", f"other={other}", "--datasets", str(eval_dataset)]
        + ["--weights", str(tiny_weights), "--out", str(out), "--threads", "1", "--grid-images", "2"]
    )
    assert code == 1  # the missing image is a failure
    captured = capsys.readouterr()
    assert "p1" in captured.err and "FAILED" in captured.err
    assert "avg rank" in captured.out  # the summary tables are printed

    rows = _read_csv(out / "per_image.csv")
    assert list(rows[0]) == ["dataset", "method", "image", *METRIC_KEYS, "seconds"]
    got = {(r["method"], r["image"]) for r in rows}
    want = {(m, n) for m in ("ours", "average", "max") for n in ("p0", "p1", "p2")} | {("other", "p0"), ("other", "p2")}
    assert got == want and len(rows) == len(want)
    assert all(r["dataset"] == "data" for r in rows)
    for r in rows:
        assert all(math.isfinite(float(r[k])) for k in METRIC_KEYS)
        assert (r["seconds"] == "") == (r["method"] == "other")  # no fusion time for a folder method
        if r["method"] == "ours":
            assert float(r["seconds"]) > 0

    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 1
    assert failures[0]["method"] == "other" and failures[0]["image"] == "p1"
    assert "no fused image named p1" in failures[0]["error"]
    assert _read_csv(out / "failures.csv")[0]["image"] == "p1"

    md = (out / "data" / "summary.md").read_text()
    table = _main_table(md)
    header, body = table[0], table[1:]
    assert "avg rank" in header and "ms / image" in header
    assert [r[0] for r in body] == ["ours", "average", "max", "other"]
    for k in METRIC_KEYS:  # a bold best in every metric column
        col = next(i for i, h in enumerate(header) if h.split()[0] == k)
        assert any(r[col].startswith("**") for r in body), k
    assert body[3][header.index("ms / image")] == "n/a"
    assert "different numbers of images" in md  # other has n = 2
    summary_rows = _read_csv(out / "data" / "summary.csv")
    assert [r["method"] for r in summary_rows] == ["ours", "average", "max", "other"]
    assert {"EN_mean", "EN_std", "EN_rank", "avg_rank", "ms_per_image", "n"} <= set(summary_rows[0])

    with Image.open(out / "data" / "bars.png") as im:
        assert im.size[0] >= 800 and im.size[1] >= 400
    with Image.open(out / "data" / "grid.png") as im:
        assert im.size[0] >= 6 * 150 and im.size[1] >= 2 * 100  # 6 columns (ir, vi, 4 methods), 2 rows
    assert (out / "summary.md").read_text().startswith("### data (3 pairs)")
    assert json.loads((out / "eval.json").read_text())["n_failures"] == 1


def test_evaluate_all_ok_and_save_fused(eval_dataset, tmp_path, capsys):
    result = evaluate(
        ["average", "max"], [str(eval_dataset)], tmp_path / "out", grid_images=0, save_fused=True, progress=False
    )
    assert result.ok and len(result.rows) == 6
    assert not (tmp_path / "out" / "data" / "grid.png").exists()
    assert _read_csv(tmp_path / "out" / "failures.csv") == []
    saved = np.asarray(Image.open(tmp_path / "out" / "fused" / "data" / "max" / "p0.png"))
    ir = np.asarray(Image.open(eval_dataset / "ir" / "p0.png"))
    vi = np.asarray(Image.open(eval_dataset / "vi" / "p0.png"))
    assert np.array_equal(saved, np.maximum(ir, vi))
    assert main(["eval", "--methods", "max", "--datasets", str(eval_dataset), "--out", str(tmp_path / "o2")]) == 0


def test_rank_table_ties_and_lower_is_better():
    means = {
        "a": {"EN": 7.0, "Nabf": 0.10},
        "b": {"EN": 6.0, "Nabf": 0.05},
        "c": {"EN": 7.0, "Nabf": 0.20},
        "d": {"EN": math.nan, "Nabf": 0.05},
    }
    r = rank_table(means, keys=("EN", "Nabf"))
    assert (r["a"]["EN"], r["c"]["EN"], r["b"]["EN"], r["d"]["EN"]) == (1.5, 1.5, 3.0, 4.0)  # NaN ranks last
    assert (r["b"]["Nabf"], r["d"]["Nabf"], r["a"]["Nabf"], r["c"]["Nabf"]) == (1.5, 1.5, 3.0, 4.0)  # lowest best
    assert r["a"]["avg_rank"] == pytest.approx(2.25)
    assert r["b"]["avg_rank"] == pytest.approx(2.25)
    assert r["c"]["avg_rank"] == pytest.approx(2.75)
    assert r["d"]["avg_rank"] == pytest.approx(2.75)


def test_summarise_average_rank_over_ten_metrics():
    # m1 beats m2 on every metric (Nabf lower), except SSIM where they tie.
    def row(method, image, base, nabf, seconds):
        values = {k: base for k in METRIC_KEYS} | {"Nabf": nabf, "SSIM": 1.0}
        return {"dataset": "d", "method": method, "image": image, **values, "seconds": seconds}

    rows = [row("m1", "a", 2.0, 0.1, 0.01), row("m1", "b", 4.0, 0.3, 0.03), row("m2", "a", 1.0, 0.5, math.nan)]
    summary = summarise(rows, ["m1", "m2"])
    m1, m2 = summary
    assert m1["n"] == 2 and m1["EN_mean"] == 3.0 and m1["EN_std"] == 1.0  # population std
    assert m1["Nabf_mean"] == pytest.approx(0.2) and m1["Nabf_rank"] == 1 and m2["Nabf_rank"] == 2
    assert m1["SSIM_rank"] == m2["SSIM_rank"] == 1.5
    assert m1["avg_rank"] == pytest.approx((9 * 1 + 1.5) / 10)
    assert m2["avg_rank"] == pytest.approx((9 * 2 + 1.5) / 10)
    assert m1["ms_per_image"] == pytest.approx(20.0) and math.isnan(m2["ms_per_image"])
    md = summary_markdown(summary, title="d", n_pairs=2)
    table = _main_table(md)
    header = table[0]
    assert table[1][header.index("EN")] == "**3.000 ± 1.000**"
    assert table[2][header.index("Nabf ↓")] == "0.5000 ± 0.0000"
    assert table[1][header.index("Nabf ↓")].startswith("**0.2000")
    assert table[1][header.index("SSIM")].startswith("**") and table[2][header.index("SSIM")].startswith("**")
    assert table[1][header.index("avg rank")] == "**1.05**" and table[2][header.index("avg rank")] == "1.95"
    assert table[2][header.index("ms / image")] == "n/a"


def test_dataset_placeholder_and_skip(make_dataset, tmp_path, capsys):
    make_dataset("root/alpha", size_hw=SIZE)
    make_dataset("root/beta", names=("q0",), size_hw=SIZE, seed=1)
    outputs = tmp_path / "root" / "reference_outputs" / "lrrnet_alpha"  # the lrrnet convention, for alpha only
    outputs.mkdir(parents=True)
    for name in ("p0", "p1", "p2"):
        shutil.copy(tmp_path / "root" / "alpha" / "ir" / f"{name}.png", outputs / f"{name}.png")
    (m,) = parse_methods(["lrrnet"])
    assert m.folder_for("alpha", tmp_path / "root") == outputs
    (x,) = parse_methods(f"x={tmp_path}/out_{{dataset}}")
    assert x.folder_for("beta", "r") == tmp_path / "out_beta"

    result = evaluate("average,lrrnet", "alpha,beta", tmp_path / "out", data_root=tmp_path / "root", progress=False)
    assert result.ok
    assert {(r["dataset"], r["method"]) for r in result.rows} == {
        ("alpha", "average"),
        ("alpha", "lrrnet"),
        ("beta", "average"),
    }
    assert any("beta: method lrrnet skipped" in n for n in result.notes)
    assert "lrrnet skipped" in capsys.readouterr().out
    assert [r["method"] for r in result.summaries["beta"]] == ["average"]


def test_unknown_method_lists_valid_ones(eval_dataset, tmp_path, capsys):
    with pytest.raises(ConfigError) as info:
        parse_methods(["ours", "bogus"])
    msg = str(info.value)
    assert "bogus" in msg
    for name in ("ours", "average", "max", "lrrnet", "NAME=DIR"):
        assert name in msg
    assert main(["eval", "--methods", "bogus", "--datasets", str(eval_dataset), "--out", str(tmp_path / "o")]) == 2
    assert "valid methods" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="given twice"):
        parse_methods("max,max")
    with pytest.raises(ConfigError, match="folder .* does not exist"):
        evaluate(f"a={tmp_path / 'nope'}", [str(eval_dataset)], tmp_path / "o", progress=False)


def test_unknown_dataset_lists_available(make_dataset, tmp_path):
    make_dataset("root/alpha", size_hw=SIZE)
    with pytest.raises(ConfigError, match="datasets under .*: alpha"):
        resolve_datasets(["gamma"], tmp_path / "root")
    assert resolve_datasets([str(tmp_path / "root" / "alpha")])[0].name == "alpha"


def test_corrupt_image_is_reported_and_skipped(eval_dataset, tmp_path):
    (eval_dataset / "ir" / "p1.png").write_bytes(b"not a png at all")
    (eval_dataset / "vi" / "extra.png").write_bytes((eval_dataset / "vi" / "p0.png").read_bytes())  # no partner
    result = evaluate(["average", "max"], [str(eval_dataset)], tmp_path / "out", progress=False)
    assert not result.ok
    assert {r["image"] for r in result.rows} == {"p0", "p2"}
    failed = {(f["method"], f["image"]): f["error"] for f in result.failures}
    assert set(failed) == {(ALL_METHODS, "p1"), (ALL_METHODS, "extra")}
    assert "not a readable image" in failed[(ALL_METHODS, "p1")]
    assert "no thermal partner" in failed[(ALL_METHODS, "extra")]
    assert len(_read_csv(tmp_path / "out" / "failures.csv")) == 2


def test_average_reproduces_golden_tno42(shared_data, tmp_path):
    golden = json.loads((shared_data / "golden_metrics.json").read_text())
    want = {Path(p["ir"]).stem: p["metrics"] for p in golden["pairs"] if p["fused_by"].startswith("pixel average")}
    assert "01" in want
    data = tmp_path / "tno42"  # two pairs of tno42 as symlinks
    for sub in ("ir", "vi"):
        (data / sub).mkdir(parents=True)
        for name in ("01", "02"):
            (data / sub / f"{name}.png").symlink_to(shared_data / "tno42" / sub / f"{name}.png")
    result = evaluate(["average"], [str(data)], tmp_path / "out", grid_images=0, progress=False)
    assert result.ok and len(result.rows) == 2
    row = next(r for r in result.rows if r["image"] == "01")
    for k in ("EN", "SD"):
        assert row[k] == pytest.approx(want["01"][k], rel=1e-4)
    csv_row = next(r for r in _read_csv(tmp_path / "out" / "per_image.csv") if r["image"] == "01")
    assert float(csv_row["EN"]) == pytest.approx(want["01"]["EN"], rel=1e-4)


def test_ours_rt_runs_the_shipped_rt_model_beside_ours(eval_dataset, tmp_path):
    from lrcfuse_model.evaluation.methods import Method, parse_methods

    assert parse_methods("ours,ours-rt")[1] == Method("ours-rt", "ours", model="rt")
    result = evaluate(["ours-rt", "max"], [str(eval_dataset)], tmp_path / "eval", grid_images=0, progress=False,
                      log=lambda msg: None)
    assert {r["method"] for r in result.rows} == {"ours-rt", "max"}
    assert all(r["seconds"] >= 0 for r in result.rows if r["method"] == "ours-rt")
    assert not result.failures
