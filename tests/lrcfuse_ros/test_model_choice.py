"""Which network the node runs: model auto | default | rt | <file>, and the older weights parameter (ROS-free)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrcfuse_ros.model_choice import choose_model, explain, needs_rebuild, planned_on_gpu, runs_on_gpu
from lrcfuse_ros.params import MODEL_CHOICES, ParameterError, check_values


@pytest.mark.parametrize(
    ("backend", "device", "first_auto", "gpu"),
    [
        ("onnxruntime", "cpu", "", False),
        ("torch", "cpu", "", False),
        ("torch", "cuda:0", "", True),
        ("onnxruntime", "cuda", "", True),
        ("tensorrt", "cpu", "", True),  # TensorRT runs on the GPU whatever `device` says
        ("auto", "cpu", "onnxruntime", False),
        ("auto", "cpu", "tensorrt", True),
        ("auto", "cuda:1", "onnxruntime", True),
    ],
)
def test_where_inference_runs(backend: str, device: str, first_auto: str, gpu: bool) -> None:
    assert planned_on_gpu(backend, device, first_auto) is gpu


def test_auto_takes_rt_on_the_cpu_and_default_on_the_gpu() -> None:
    cpu = choose_model("auto", "", on_gpu=False)
    assert (cpu.weights, cpu.label, cpu.auto) == ("rt", "rt", True)
    line = explain(cpu, "auto", "onnxruntime", "cpu")
    assert line.startswith("model auto: rt (inference on the CPU with onnxruntime; the default model takes seconds")
    gpu = choose_model("auto", "", on_gpu=True)
    assert gpu.weights == "default"
    line = explain(gpu, "auto", "tensorrt", "cuda:0")
    assert line.startswith("model auto: default (inference on cuda:0 with tensorrt")


def test_a_named_model_or_file_is_taken_as_it_is() -> None:
    assert choose_model("default", "", on_gpu=False).weights == "default"
    assert choose_model("rt", "", on_gpu=True).weights == "rt"
    choice = choose_model("/models/mine.onnx", "", on_gpu=False)
    assert choice.weights == "/models/mine.onnx" and not choice.auto
    assert explain(choice, "/models/mine.onnx", "onnxruntime", "cpu") == (
        "model /models/mine.onnx (inference on the CPU with onnxruntime)"
    )


def test_weights_wins_over_model_and_says_so() -> None:
    choice = choose_model("rt", "/old/weights.pt", on_gpu=False)
    assert (choice.weights, choice.label, choice.auto) == ("/old/weights.pt", "/old/weights.pt", False)
    assert "model:=rt is not used" in explain(choice, "rt", "torch", "cpu")
    line = explain(choose_model("auto", "/w.pt", on_gpu=False), "auto", "torch", "cpu")
    assert "a non-empty weights wins over model" in line and "is not used" not in line


def test_auto_is_rebuilt_when_the_backend_that_started_runs_elsewhere() -> None:
    planned_gpu = choose_model("auto", "", on_gpu=True)  # TensorRT was first in line ...
    assert needs_rebuild(planned_gpu, "onnxruntime", "cpu")  # ... but failed: ONNX Runtime on the CPU started
    assert not needs_rebuild(planned_gpu, "tensorrt", "cuda:0")
    assert not needs_rebuild(choose_model("auto", "", on_gpu=False), "onnxruntime", "cpu")
    assert not needs_rebuild(choose_model("default", "", on_gpu=True), "onnxruntime", "cpu")  # asked for: kept
    assert runs_on_gpu("torch", "cuda") and not runs_on_gpu("onnxruntime", "cpu")


def test_check_values_names_the_valid_models(tmp_path: Path) -> None:
    for name in MODEL_CHOICES:
        check_values({"model": name})
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    check_values({"model": str(weights)})
    with pytest.raises(ParameterError, match=r"model: expected one of auto, default, rt or a weights file .* 'fast'"):
        check_values({"model": "fast"})
    with pytest.raises(ParameterError, match="no such file"):
        check_values({"model": str(tmp_path / "missing.pt")})
