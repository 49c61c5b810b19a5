"""lrcfuse_model.inference.bench: what `lrcfuse bench` measures and reports (no speed asserted: not a test of speed)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from torch import nn

from lrcfuse_model.cli import main
from lrcfuse_model.inference.bench import RECORD_KEYS, count_macs, format_report, run_bench


def test_count_macs_is_the_conv_arithmetic(tiny_model):
    per_pixel = sum(
        m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        for m in tiny_model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    )
    for h, w in ((16, 16), (37, 53), (512, 640)):
        assert count_macs(tiny_model, (h, w)) == per_pixel * h * w


def test_run_bench_in_process(tiny_weights, tmp_path):
    messages: list[str] = []
    result = run_bench(
        ["torch", "onnxruntime", "tensorrt"],
        [(24, 32), (17, 23)],
        runs=3,
        warmup=1,
        weights=str(tiny_weights),
        threads=1,
        cache_dir=str(tmp_path / "cache"),
        isolate=False,
        log=messages.append,
    )
    records = result["records"]
    assert [(r["backend"], r["width"], r["height"]) for r in records] == [
        ("torch", 32, 24),
        ("torch", 23, 17),
        ("onnxruntime", 32, 24),
        ("onnxruntime", 23, 17),
    ]
    for r in records:
        assert set(RECORD_KEYS) <= set(r)
        assert 0 < r["median_ms"] <= r["p90_ms"] and r["runs"] == 3
        assert r["fps"] == pytest.approx(1000.0 / r["median_ms"], rel=1e-2)  # median_ms is rounded
    if not (importlib.util.find_spec("tensorrt") and torch.cuda.is_available()):
        assert [s["backend"] for s in result["skipped"]] == ["tensorrt"]
        assert "tensorrt" in result["skipped"][0]["reason"]
    blocks = [b for b in result["torch_blocks"] if (b["height"], b["width"]) == (24, 32)]
    assert [b["block"] for b in blocks] == ["llrr_vi", "llrr_ir", "fusion", "cfpm", "decoder", "other"]
    assert sum(b["share"] for b in blocks) == pytest.approx(1.0, abs=0.02)
    assert result["model"]["parameters"] > 0 and set(result["model"]["macs_per_frame"]) == {"32x24", "23x17"}
    text = format_report(result)
    assert "speed-up onnxruntime vs torch at 32x24" in text and "where the time goes" in text
    assert any("skipping tensorrt" in m for m in messages) or not result["skipped"]


def test_bench_worker_process_reports_peak_memory(tiny_weights, tmp_path):
    result = run_bench(["torch"], [(20, 20)], runs=2, warmup=1, weights=str(tiny_weights), threads=1, blocks=False)
    (record,) = result["records"]
    assert record["peak_rss_mb"] > 50  # a fresh process with torch loaded
    assert 0 <= record["frame_mem_mb"] <= record["peak_rss_mb"]
    assert result["torch_blocks"] == []


def test_cli_bench_writes_json(tiny_weights, tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--weights", str(tiny_weights), "--sizes", "30x20", "--runs", "2", "--warmup", "0"]
    argv += ["--threads", "1", "--no-isolate", "--no-blocks", "--cache-dir", str(tmp_path / "c"), "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "median ms" in printed and "onnxruntime" in printed
    data = json.loads(out.read_text())
    assert [r["backend"] for r in data["records"]] == ["torch", "onnxruntime"]
    assert all(set(RECORD_KEYS) <= set(r) for r in data["records"])
    assert data["model"]["macs_per_frame"]["30x20"] > 0


@pytest.mark.parametrize(
    ("option", "value", "message"), [("--sizes", "640", "WIDTHxHEIGHT"), ("--backends", "auto", "unknown")]
)
def test_cli_bench_rejects_bad_options(tiny_weights, capsys, option, value, message):
    assert main(["bench", "--weights", str(tiny_weights), "--no-isolate", option, value]) == 2
    assert message in capsys.readouterr().err
