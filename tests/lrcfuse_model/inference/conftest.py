"""Fixtures of the inference tests: the shipped default model; a small LRCFuse, its ONNX export, random frames."""

from __future__ import annotations

import pytest
import torch
from inference_testing import SMALL, trained_like

from lrcfuse_model import LRCFuse
from lrcfuse_model.inference.export import export_onnx
from lrcfuse_model.nn.checkpoint import DEFAULT_WEIGHTS, load_pretrained


@pytest.fixture(scope="module")
def shipped_default() -> LRCFuse:
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"shipped weights {DEFAULT_WEIGHTS} do not exist")
    return load_pretrained("default")


@pytest.fixture(scope="module")
def small_model() -> LRCFuse:
    torch.manual_seed(1)
    return trained_like(LRCFuse(**SMALL))


@pytest.fixture(scope="module")
def small_onnx(small_model, tmp_path_factory):
    return export_onnx(small_model, tmp_path_factory.mktemp("onnx") / "small.onnx")
