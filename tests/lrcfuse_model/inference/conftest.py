"""Fixtures of the inference tests: the shipped default model."""

from __future__ import annotations

import pytest

from lrcfuse_model import LRCFuse
from lrcfuse_model.nn.checkpoint import DEFAULT_WEIGHTS, load_pretrained


@pytest.fixture(scope="module")
def shipped_default() -> LRCFuse:
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"shipped weights {DEFAULT_WEIGHTS} do not exist")
    return load_pretrained("default")
