"""lrcfuse_model.inference.bench: what `lrcfuse bench` measures and reports (no speed asserted: not a test of speed)."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
import torch
from torch import nn

from lrcfuse_model import save_weights
from lrcfuse_model.cli import main
from lrcfuse_model.inference import bench
from lrcfuse_model.inference.bench import (
    RECORD_KEYS,
    bench_models,
    count_macs,
    format_report,
    interleave,
    median_ratio,
    resolve_models,
    round_ratios,
    run_bench,
)
from lrcfuse_model.inference.bench_worker import Combination, WorkerProcess
from lrcfuse_model.nn import checkpoint
from lrcfuse_model.nn.rt_model import LRCFuseRT

TINY_RT = {"scale": 4, "code_channels": 4, "llrr_blocks": 2, "feature_channels": 4, "cfpm_stages": 2}
TINY_RT["head_channels"] = 4


@pytest.fixture
def tiny_rt_weights(tmp_path):
    """A tiny LRCFuse-RT saved as a weights file."""
    torch.manual_seed(0)
    return save_weights(LRCFuseRT(TINY_RT).eval(), tmp_path / "weights" / "tiny_rt.pt")


def _conv_macs_per_pixel(model: nn.Module) -> int:
    return sum(
        m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    )


def test_count_macs_is_the_conv_arithmetic(tiny_model):
    per_pixel = _conv_macs_per_pixel(tiny_model)
    for h, w in ((16, 16), (37, 53), (512, 640)):
        assert count_macs(tiny_model, (h, w)) == per_pixel * h * w
    rt = LRCFuseRT(TINY_RT).eval()  # its convolutions run at 1/scale (plus padding): counted on the frame itself
    outputs: list[int] = []
    convs = [m for m in rt.modules() if isinstance(m, nn.Conv2d)]
    handles = [m.register_forward_hook(lambda m, i, o: outputs.append(o.numel() * m.in_channels * 9)) for m in convs]
    with torch.inference_mode():
        rt(torch.zeros(1, 1, 48, 64), torch.zeros(1, 1, 48, 64))
    for h in handles:
        h.remove()
    assert count_macs(rt, (48, 64)) == sum(outputs) < _conv_macs_per_pixel(rt) * 48 * 64 / 4


def test_interleave_rotates_the_order_round_by_round():
    order: list[str] = []

    class Fake:
        def __init__(self, name: str, seconds: float) -> None:
            self.name, self.seconds = name, seconds

        def frame(self) -> float:
            order.append(self.name)
            return self.seconds

    times = interleave([Fake("a", 1.0), Fake("b", 2.0), Fake("c", 3.0)], 3, settle_s=0.0)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert times == [[1.0] * 3, [2.0] * 3, [3.0] * 3]


def test_ratios_are_medians_of_per_round_ratios():
    # Round by round default/rt = 2, 4, 3, 1 -> median 2.5 (the ratio of the medians would be 25 / 7.5).
    assert median_ratio([10, 20, 30, 100], [5, 5, 10, 100]) == pytest.approx(2.5)

    def rec(model, backend, ms):
        return {
            "model": model,
            "backend": backend,
            "height": 48,
            "width": 64,
            "round_ms": ms,
            "median_ms": sorted(ms)[1],
        }

    records = [
        rec("default", "torch", [10, 20, 30]),
        rec("default", "onnxruntime", [5, 10, 10]),
        rec("rt", "torch", [1, 5, 10]),  # per round vs default: 10, 4, 3 -> 4
        rec("rt", "onnxruntime", [1, 1, 2]),  # 5, 10, 5 -> 5; vs rt on torch: 1, 5, 5 -> 5
    ]
    got = {(r["kind"], r["model"], r["backend"]): r for r in round_ratios(records)}
    assert set(got) == {
        ("model", "rt", "torch"),
        ("model", "rt", "onnxruntime"),
        ("backend", "default", "onnxruntime"),
        ("backend", "rt", "onnxruntime"),
    }
    assert got["model", "rt", "torch"]["speedup"] == pytest.approx(4.0)
    assert got["model", "rt", "torch"]["baseline"] == "default" and got["model", "rt", "torch"]["rounds"] == 3
    assert got["model", "rt", "onnxruntime"]["speedup"] == pytest.approx(5.0)
    assert got["backend", "default", "onnxruntime"]["speedup"] == pytest.approx(2.0)  # 2, 2, 3
    assert got["backend", "rt", "onnxruntime"]["speedup"] == pytest.approx(5.0)
    assert got["backend", "rt", "onnxruntime"]["baseline"] == "torch"
    # Without `default`, the first model timed is the baseline.
    other = [dict(r, model="a.pt" if r["model"] == "default" else "b.pt") for r in records]
    (model_ratio,) = [r for r in round_ratios(other) if r["kind"] == "model" and r["backend"] == "torch"]
    assert (model_ratio["model"], model_ratio["baseline"]) == ("b.pt", "a.pt")
    # Without `torch`, the first backend timed is the baseline.
    no_torch = [dict(r, backend="openvino") if r["backend"] == "torch" else r for r in records[1::2] + records[::2]]
    backend_ratios = {r["model"]: r for r in round_ratios(no_torch) if r["kind"] == "backend"}
    assert backend_ratios["default"]["baseline"] == "onnxruntime" and backend_ratios["default"]["backend"] == "openvino"
    assert backend_ratios["default"]["speedup"] == pytest.approx(0.5)  # onnxruntime / openvino: 0.5, 0.5, 1/3
    text = format_report({"records": [], "skipped": [], "ratios": round_ratios(records), "models": [],
                          "torch_blocks": [], "malloc": [], "machine": {"cpu_count": 2, "processor": "x", "torch": "t",
                          "malloc_tuned": True, "isolated_processes": True}})  # fmt: skip
    assert "rt is 4.00x faster than default on torch at 64x48 (median of 3 per-round ratios)" in text
    assert "onnxruntime is 2.00x faster than torch for default at 64x48" in text


def _record_frame_order(monkeypatch) -> list[tuple[str, str]]:
    """Every frame the coordinator asks for, as (model, backend), in order."""
    order: list[tuple[str, str]] = []
    for cls in (Combination, WorkerProcess):  # in process / in a worker
        original = cls.frame

        def frame(self, original=original):
            order.append((self.spec["model"], self.spec["backend"]))
            return original(self)

        monkeypatch.setattr(cls, "frame", frame)
    return order


def test_run_bench_in_process_times_models_and_backends_in_rounds(tiny_weights, tiny_rt_weights, monkeypatch):
    order = _record_frame_order(monkeypatch)
    models = [str(tiny_weights), str(tiny_rt_weights)]
    sizes = [(48, 64), (17, 23)]
    messages: list[str] = []
    result = run_bench(
        ["torch", "onnxruntime", "tensorrt"], sizes, runs=3, warmup=1, models=models, threads=1, isolate=False,
        settle_s=0.0, log=messages.append,
    )  # fmt: skip
    combos = [(m, b) for m in models for b in ("torch", "onnxruntime")]
    assert order == [combos[(r + k) % 4] for _ in sizes for r in range(3) for k in range(4)]  # sizes one by one
    records = result["records"]
    assert [(r["model"], r["backend"], r["width"], r["height"]) for r in records] == [
        (m, b, w, h) for h, w in sizes for m, b in combos
    ]
    for r in records:
        assert set(RECORD_KEYS) <= set(r) and r["runs"] == 3 and len(r["round_ms"]) == 3
        assert 0 < r["median_ms"] <= r["p90_ms"] and r["threads"] == 1
        assert r["fps"] == pytest.approx(1000.0 / r["median_ms"], rel=1e-2)  # median_ms is rounded
        assert 0 <= r["frame_mem_mb"] <= r["peak_rss_mb"]
    kinds = sorted((r["kind"], r["model"], r["backend"], r["baseline"]) for r in result["ratios"] if r["width"] == 64)
    assert kinds == sorted(
        [("model", models[1], b, models[0]) for b in ("torch", "onnxruntime")]  # no `default`: the first model
        + [("backend", m, "onnxruntime", "torch") for m in models]
    )
    if not (importlib.util.find_spec("tensorrt") and torch.cuda.is_available()):
        assert [(s["model"], s["backend"]) for s in result["skipped"]] == [(m, "tensorrt") for m in models]
        assert "tensorrt" in result["skipped"][0]["reason"] and any("skipping" in m for m in messages)
    blocks = {m: [b["block"] for b in result["torch_blocks"] if (b["model"], b["width"]) == (m, 64)] for m in models}
    assert blocks == {
        models[0]: ["llrr_vi", "llrr_ir", "fusion", "cfpm", "decoder", "other"],
        models[1]: ["llrr_vi", "llrr_ir", "fusion", "cfpm", "other"],  # LRCFuse-RT has no decoder
    }
    assert sum(b["share"] for b in result["torch_blocks"][:6]) == pytest.approx(1.0, abs=0.02)
    facts = {m["model"]: m for m in result["models"]}
    assert facts[models[1]]["architecture"] == "lrcfuse-rt" and facts[models[0]]["macs_per_frame"]["64x48"] > 0
    text = format_report(result)
    assert "faster than" in text and "where the time goes" in text and "threads" in text
    json.dumps(result)  # all plain data


def test_run_bench_workers_are_persistent_processes_in_rounds(tiny_weights, tiny_rt_weights, monkeypatch):
    order = _record_frame_order(monkeypatch)
    models = [str(tiny_weights), str(tiny_rt_weights)]
    # threads=0: ONNX Runtime takes all cores, or what the export asks for (LRCFuse-RT)
    result = run_bench(["onnxruntime"], [(48, 64)], runs=3, warmup=1, models=models, settle_s=0.0, log=print)
    assert order == [(models[(r + k) % 2], "onnxruntime") for r in range(3) for k in range(2)]
    default, rt = result["records"]
    for r in (default, rt):
        assert r["peak_rss_mb"] > 50  # each a process of its own, with torch and onnxruntime loaded
        assert 0 <= r["frame_mem_mb"] <= r["peak_rss_mb"] and len(r["round_ms"]) == 3
    assert default["threads"] == os.cpu_count() and rt["threads"] == min(LRCFuseRT.cpu_threads, os.cpu_count())
    (ratio,) = result["ratios"]
    assert (ratio["model"], ratio["baseline"], ratio["rounds"]) == (models[1], models[0], 3)


def test_cli_bench_writes_json(tiny_weights, tiny_rt_weights, tmp_path, capsys):
    out = tmp_path / "bench.json"
    # --weights (the older option) is added to --models unless those are just `default`
    argv = ["bench", "--models", str(tiny_rt_weights), "--weights", str(tiny_weights), "--sizes", "30x20"]
    argv += ["--runs", "2", "--warmup", "0", "--settle-ms", "0", "--threads", "1", "--no-isolate", "--no-blocks"]
    argv += ["--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "median ms" in printed and "onnxruntime" in printed and "faster than" in printed
    data = json.loads(out.read_text())
    models = [str(tiny_rt_weights), str(tiny_weights)]
    assert [(r["model"], r["backend"]) for r in data["records"]] == [
        (m, b) for m in models for b in ("torch", "onnxruntime")
    ]
    assert all(set(RECORD_KEYS) <= set(r) for r in data["records"])
    assert len(data["ratios"]) == 4 and all(r["speedup"] > 0 for r in data["ratios"])
    assert [m["model"] for m in data["models"]] == models and data["models"][1]["macs_per_frame"]["30x20"] > 0


def test_bench_models_and_weights():
    assert bench_models(["default"], None) == ["default"]
    assert bench_models("default,rt", None) == ["default", "rt"]
    assert bench_models(["default"], "w.pt") == ["w.pt"]  # the pre-`models` meaning of --weights
    assert bench_models(["default", "rt"], "w.pt") == ["default", "rt", "w.pt"]
    assert bench_models(["rt", "w.pt"], "w.pt") == ["rt", "w.pt"]


def test_unknown_or_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="'nosuch' is neither a shipped model"):
        resolve_models(["default", "nosuch"])
    monkeypatch.setitem(checkpoint.SHIPPED_MODELS, "rt", tmp_path / "lrcfuse_rt.pt")
    with pytest.raises(ValueError, match="'rt' is a shipped model, but its weights file .* does not exist"):
        run_bench(["torch"], [(20, 20)], models=["rt"], isolate=False)
    assert bench.BASELINE_MODEL in checkpoint.SHIPPED_MODELS


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--sizes", "640", "WIDTHxHEIGHT"), ("--backends", "auto", "unknown"), ("--models", "nosuch", "shipped model")],
)
def test_cli_bench_rejects_bad_options(tiny_weights, capsys, option, value, message):
    argv = ["bench", "--no-isolate", option, value]
    if option != "--models":
        argv += ["--weights", str(tiny_weights)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
