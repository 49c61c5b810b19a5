"""lrcfuse_model.malloc_tuning: the glibc allocator settings, torch-free."""

from __future__ import annotations

import subprocess
import sys

from lrcfuse_model.malloc_tuning import FAST_MALLOC_ENV, NO_MALLOC_TUNING_ENV, allocator_env, malloc_tuned


def test_allocator_env():
    tuned, default = allocator_env(True), allocator_env(False)
    assert all(tuned[k] == v for k, v in FAST_MALLOC_ENV.items())
    assert not set(FAST_MALLOC_ENV) & set(default)
    assert tuned[NO_MALLOC_TUNING_ENV] == default[NO_MALLOC_TUNING_ENV] == "1"  # a child never restarts itself
    assert allocator_env(False, {"A": "1", "MALLOC_MMAP_MAX_": "7"}) == {"A": "1", NO_MALLOC_TUNING_ENV: "1"}


def test_malloc_tuned(monkeypatch):
    for k, v in FAST_MALLOC_ENV.items():
        monkeypatch.setenv(k, v)
    assert malloc_tuned()
    monkeypatch.delenv("MALLOC_TOP_PAD_")
    assert not malloc_tuned()


def test_importing_it_does_not_import_torch():
    """The launch file and the node's restart read it: it must stay light."""
    code = "import sys, lrcfuse_model.malloc_tuning, lrcfuse_model.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
