"""Shared fixtures: the shared data folder, a tiny model configuration and tiny paired datasets.

Everything here is sized for a 2-core CI machine: tiny networks, images of a few dozen pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
YOLOV5N_WEIGHTS = SHARED_DATA / "weights" / "yolov5n_coco_state_dict.pt"

# A configuration small enough that a forward + backward pass on a 32 x 32 patch takes milliseconds.
TINY_MODEL = {"code_channels": 4, "feature_channels": 4, "decoder_channels": [4, 4], "llrr_blocks": 2, "cfpm_stages": 2}


@pytest.fixture(autouse=True, scope="session")
def _single_thread() -> None:
    """One torch thread: deterministic reductions and no fight with other jobs for the cores."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exported ONNX models / engines go to a folder of this run, not the user's ~/.cache/lrcfuse."""
    import os

    os.environ["LRCFUSE_CACHE"] = str(tmp_path_factory.mktemp("lrcfuse_cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``../shared/data`` from the repository root), or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def yolov5n_weights(shared_data: Path) -> Path:
    """The plain-tensor COCO YOLOv5n checkpoint from the shared data, or skip."""
    path = shared_data / "weights" / "yolov5n_coco_state_dict.pt"
    if not path.is_file():
        pytest.skip(f"shared YOLOv5n weights not found at {path}")
    return path


@pytest.fixture
def tiny_model_cfg() -> dict:
    """Keyword arguments of a tiny LRCFuse (a fresh copy per test)."""
    return {k: list(v) if isinstance(v, list) else v for k, v in TINY_MODEL.items()}


@pytest.fixture
def tiny_model(tiny_model_cfg: dict):
    """A tiny LRCFuse with fixed random weights, in eval mode."""
    from lrcfuse_model import LRCFuse

    torch.manual_seed(0)
    return LRCFuse(**tiny_model_cfg).eval()


@pytest.fixture
def tiny_weights(tmp_path: Path, tiny_model) -> Path:
    """The tiny model saved as a weights file (what ``lrcfuse fuse --weights`` reads)."""
    from lrcfuse_model import save_weights

    return save_weights(tiny_model, tmp_path / "weights" / "tiny.pt", meta={"note": "test"})


def write_dataset(
    root: Path,
    names: Iterable[str] = ("p0", "p1", "p2"),
    size_hw: tuple[int, int] = (40, 48),
    seed: int = 0,
    rgb_vi: bool = False,
) -> Path:
    """Write random 8-bit pairs ``root/ir/<name>.png`` + ``root/vi/<name>.png``; return ``root``."""
    rng = np.random.default_rng(seed)
    (root / "ir").mkdir(parents=True, exist_ok=True)
    (root / "vi").mkdir(parents=True, exist_ok=True)
    h, w = size_hw
    for name in names:
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(root / "ir" / f"{name}.png")
        vi_shape = (h, w, 3) if rgb_vi else (h, w)
        Image.fromarray(rng.integers(0, 256, vi_shape, dtype=np.uint8)).save(root / "vi" / f"{name}.png")
    return root


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_dataset("name", names=..., size_hw=...)`` writes a paired folder in tmp_path."""

    def make(folder: str = "data", **kwargs) -> Path:
        return write_dataset(tmp_path / folder, **kwargs)

    return make


@pytest.fixture
def tiny_dataset(make_dataset) -> Path:
    """Three random 40 x 48 gray pairs in ``tmp_path/data/{ir,vi}``."""
    return make_dataset("data")
