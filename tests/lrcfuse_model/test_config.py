"""lrcfuse_model.config: the defaults file and strict, typed overrides."""

from __future__ import annotations

import pytest
import yaml

from lrcfuse_model.config import ConfigError, load_defaults, load_yaml, merge, parse_size, resolve, split_list
from lrcfuse_model.nn.model import LRCFuseConfig


def test_defaults_have_every_section():
    cfg = load_defaults()
    assert {"model", "loss", "data", "train", "fuse"} <= set(cfg)
    assert resolve() == cfg


def test_default_model_section_is_the_default_network():
    assert LRCFuseConfig.from_dict(load_defaults()["model"]) == LRCFuseConfig()


def test_unknown_key_lists_valid_keys_and_closest_match():
    with pytest.raises(ConfigError) as info:
        resolve(overrides={"train": {"batch_sze": 4}})
    msg = str(info.value)
    assert "unknown config key 'train.batch_sze'" in msg
    assert "Did you mean 'train.batch_size'?" in msg
    assert "Valid keys in train:" in msg
    for key in ("batch_size", "patch_size", "steps", "lr", "resume"):
        assert key in msg


def test_unknown_section_hint():
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'\. Did you mean 'train'\?"):
        resolve(overrides={"trian": {"steps": 1}})


def test_unknown_key_without_close_match_has_no_hint():
    with pytest.raises(ConfigError) as info:
        resolve(overrides={"model": {"zzzzzz": 1}})
    assert "Did you mean" not in str(info.value)
    assert "code_channels" in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ({"train": {"batch_size": "8"}}, "train.batch_size", "expected int"),
        ({"train": {"batch_size": 2.5}}, "train.batch_size", "expected int"),
        ({"train": {"steps": True}}, "train.steps", "expected int"),
        ({"train": {"lr": "fast"}}, "train.lr", "expected float"),
        ({"data": {"normalize_8bit": 1}}, "data.normalize_8bit", "expected bool"),
        ({"model": {"decoder_channels": 64}}, "model.decoder_channels", "expected list"),
        ({"loss": {"sobel_target": 3}}, "loss.sobel_target", "expected str"),
    ],
)
def test_wrong_type_names_key_and_type(override, key, expected):
    with pytest.raises(ConfigError) as info:
        resolve(overrides=override)
    msg = str(info.value)
    assert f"config key '{key}'" in msg
    assert expected in msg


def test_int_is_coerced_to_float():
    cfg = resolve(overrides={"train": {"lr": 1, "time_budget": 2}})
    assert cfg["train"]["lr"] == 1.0 and isinstance(cfg["train"]["lr"], float)
    assert isinstance(cfg["train"]["time_budget"], float)


def test_tuple_becomes_list():
    cfg = resolve(overrides={"model": {"decoder_channels": (8, 4)}})
    assert cfg["model"]["decoder_channels"] == [8, 4]


def test_section_needs_a_mapping():
    with pytest.raises(ConfigError, match=r"config key 'train' is a section: expected a mapping"):
        resolve(overrides={"train": 5})


def test_config_file_is_applied_then_overrides(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump({"train": {"batch_size": 3, "steps": 7}, "model": {"code_channels": 8}}))
    cfg = resolve(path)
    assert cfg["train"]["batch_size"] == 3
    assert cfg["train"]["steps"] == 7
    assert cfg["model"]["code_channels"] == 8
    assert cfg["train"]["patch_size"] == load_defaults()["train"]["patch_size"]  # untouched keys stay
    cfg = resolve(path, overrides={"train": {"batch_size": 5}})
    assert cfg["train"]["batch_size"] == 5  # command line beats the file
    assert cfg["train"]["steps"] == 7


def test_config_file_with_unknown_key_is_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("loss:\n  pixle: 3.0\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'loss.pixle'\. Did you mean 'loss.pixel'\?"):
        resolve(path)


def test_load_yaml_edge_cases(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) == {}
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections, got list"):
        load_yaml(listing)


def test_merge_does_not_mutate_inputs():
    base = load_defaults()
    merged = merge(base, {"train": {"steps": 1}})
    assert merged["train"]["steps"] == 1
    assert base["train"]["steps"] == load_defaults()["train"]["steps"]
    merged["model"]["decoder_channels"].append(1)
    assert len(base["model"]["decoder_channels"]) == 2  # a deep copy, not shared lists


def test_packaged_paper_loss_config_is_valid():
    from lrcfuse_model.config import DEFAULTS_PATH, resolve

    cfg = resolve(DEFAULTS_PATH.with_name("loss_vgg16_paper.yaml"))
    assert cfg["loss"]["feature_net"] == "vgg16"
    assert (cfg["loss"]["pixel_target"], cfg["loss"]["sobel_target"]) == ("vi", "ir")
    assert cfg["loss"]["middle_betas"] == [0.01, 0.5]


def test_split_list_commas_also_separate():
    assert split_list(["torch,onnxruntime", " tensorrt "]) == ["torch", "onnxruntime", "tensorrt"]
    assert split_list("ir, vi,,") == ["ir", "vi"]
    assert split_list([]) == []


def test_parse_size():
    assert parse_size("640x512") == (512, 640)
    assert parse_size(" 1024X768 ") == (768, 1024)
    for bad in ("640", "640x", "1x512", "axb", "640*512"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_size(bad)
