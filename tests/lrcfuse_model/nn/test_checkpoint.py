"""lrcfuse_model.nn.checkpoint: weights files written and read back, and every malformed file a clear error."""

from __future__ import annotations

import pytest
import torch

from lrcfuse_model.nn.checkpoint import DEFAULT_WEIGHTS, WEIGHTS_DIR, load_model, save_weights


def test_default_weights_are_in_the_package():
    assert WEIGHTS_DIR.name == "weights" and WEIGHTS_DIR.parent.name == "lrcfuse_model"
    assert DEFAULT_WEIGHTS.parent == WEIGHTS_DIR


def test_save_and_load_round_trip(tiny_model, tmp_path):
    path = save_weights(tiny_model, tmp_path / "sub" / "w.pt", meta={"steps": 3})
    assert path.is_file()
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == tiny_model.config
    ir, vi = torch.rand(1, 1, 21, 19), torch.rand(1, 1, 21, 19)
    with torch.no_grad():
        assert torch.equal(loaded(ir, vi), tiny_model(ir, vi))
    blob = torch.load(path, weights_only=True)
    assert blob["meta"] == {"steps": 3}
    assert blob["format"] == "lrcfuse-weights-v1"


def test_load_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")


def test_load_model_random_dict(tmp_path):
    path = tmp_path / "random.pt"
    torch.save({"weights": torch.zeros(3), "epoch": 1}, path)
    with pytest.raises(ValueError) as info:
        load_model(path)
    msg = str(info.value)
    assert "'model_config'" in msg and "'state_dict'" in msg
    assert "['epoch', 'weights']" in msg


def test_load_model_garbage_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x00\x01 not torch")
    with pytest.raises(ValueError, match="not a readable LRCFuse weights file"):
        load_model(path)


def test_load_model_missing_tensor(tiny_model, tmp_path):
    path = save_weights(tiny_model, tmp_path / "w.pt")
    blob = torch.load(path, weights_only=True)
    del blob["state_dict"]["decoder.layers.0.weight"]
    torch.save(blob, path)
    with pytest.raises(ValueError, match="decoder.layers.0.weight"):
        load_model(path)


def test_load_model_config_not_matching_tensors(tiny_model, tmp_path):
    path = save_weights(tiny_model, tmp_path / "w.pt")
    blob = torch.load(path, weights_only=True)
    blob["model_config"]["code_channels"] = 8  # tensors are for 4
    torch.save(blob, path)
    with pytest.raises(ValueError, match="do not match the model config"):
        load_model(path)
