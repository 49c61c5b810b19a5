"""The node's parameter table, and the files that must follow it: config/fusion.yaml, the launch file, the README."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import yaml

from lrcfuse_ros.params import (
    IDENTITY_HOMOGRAPHY,
    PARAMETERS,
    ParameterError,
    check_values,
    data_config,
    flatten,
    nested_defaults,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO_ROOT / "launch" / "fusion.launch.py"


def _defaults() -> dict:
    return {name: spec.default for name, spec in PARAMETERS.items()}


def test_every_parameter_has_a_description_and_a_typed_default() -> None:
    for name, spec in PARAMETERS.items():
        assert spec.description.strip(), name
        if isinstance(spec.default, list) and not spec.default:
            assert spec.element_type in ("string", "double"), f"{name}: empty list needs an element type"


def test_nested_defaults_flatten_back_to_the_table() -> None:
    assert flatten(nested_defaults()) == _defaults()
    assert nested_defaults()["detector"]["enabled"] is False


def test_config_yaml_holds_exactly_the_declared_parameters_with_their_defaults() -> None:
    doc = yaml.safe_load((REPO_ROOT / "config" / "fusion.yaml").read_text())
    params = flatten(doc["/**"]["ros__parameters"])
    assert params == _defaults()


def test_data_config_maps_onto_the_preprocessing_keys() -> None:
    cfg = data_config(_defaults())
    assert cfg["homography"] == []  # identity = aligned: no warp per frame
    assert cfg["size_mismatch"] == "error" and cfg["thermal_norm"] == "percentile"
    h = [1.0, 0.0, 5.0, 0.0, 1.0, -3.0, 0.0, 0.0, 1.0]
    assert data_config({"homography": [int(v) for v in h]})["homography"] == h
    from lrcfuse_model.images.preprocess import data_settings

    assert set(cfg) <= set(data_settings()), "every mapped key must exist in the data config section"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"homography": [1.0, 0.0]}, "homography: expected 9 numbers"),
        ({"thermal_range": [0.0]}, "thermal_range: expected 2 numbers"),
        ({"size_mismatch": "crop"}, "size_mismatch: expected one of"),
    ],
)
def test_data_config_rejects_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        data_config(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"reliability": "sometimes"}, "reliability: expected one of"),
        ({"queue_size": 0}, "queue_size: expected an integer >= 1"),
        ({"slop": -0.1}, "slop: expected a number >= 0.0, got -0.1"),
        ({"diagnostics_period_s": 0.0}, "diagnostics_period_s: expected a number > 0.0"),
        ({"threads": -3}, "threads: expected an integer >= 0, got -3"),
        ({"thermal_norm": "bogus"}, "thermal_norm: expected one of percentile, fixed, minmax, none, got 'bogus'"),
        ({"backend": "trt"}, "backend: expected one of auto, torch, onnxruntime, openvino, tensorrt, got 'trt'"),
        ({"device": "gpu"}, "device: expected cpu, cuda or cuda:N"),
        ({"detector.confidence": 1.5}, "detector.confidence: expected a number from 0.0 to 1.0"),
        ({"detector.enabled": True, "detector.weights": ""}, "detector.weights is empty"),
    ],
)
def test_check_values_names_the_parameter(values: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        check_values(values)
    check_values(_defaults())  # the defaults are valid


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"thermal_percentiles": [99.0, 1.0]}, "thermal_percentiles: expected 0 <= LOW < HIGH <= 100"),
        ({"thermal_range": [300.0, 290.0]}, "thermal_range: expected LOW < HIGH"),
    ],
)
def test_data_config_applies_the_preprocessing_checks_under_the_parameter_name(values: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=f"^{re.escape(message)}"):
        data_config(_defaults() | values)


def test_constraints_name_existing_parameters_and_the_real_backends() -> None:
    from lrcfuse_model.inference.backends import BACKEND_NAMES
    from lrcfuse_ros.params import CHOICES, MINIMUMS, UNIT_INTERVAL, constraints

    assert set(CHOICES) | set(MINIMUMS) | set(UNIT_INTERVAL) <= set(PARAMETERS)
    assert CHOICES["backend"] == BACKEND_NAMES
    for name, spec in PARAMETERS.items():  # every default satisfies its own constraint
        check_values({name: spec.default})
    assert constraints("threads") == ">= 0" and constraints("reliability").startswith("one of: ")


def test_identity_constant_is_the_default_homography() -> None:
    assert PARAMETERS["homography"].default == IDENTITY_HOMOGRAPHY


# -- launch file (the `launch` wheel is not on PyPI: read it with ast) --------------------------------


def _launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def _module_dict(tree: ast.Module, name: str) -> dict:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {LAUNCH_FILE}")


def _declared_arguments(tree: ast.Module) -> dict[str, dict[str, ast.expr]]:
    declared = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DeclareLaunchArgument":
            name = ast.literal_eval(node.args[0])
            declared[name] = {kw.arg: kw.value for kw in node.keywords}
    return declared


def test_launch_arguments_all_have_descriptions() -> None:
    declared = _declared_arguments(_launch_tree())
    assert {"params_file", "namespace", "backend", "detector", "thermal_topic", "rgb_topic"} <= set(declared)
    for name, keywords in declared.items():
        assert "description" in keywords, f"launch argument {name} has no description"
        assert "default_value" in keywords, f"launch argument {name} has no default"


def test_launch_parameters_and_remaps_exist_in_the_node() -> None:
    from lrcfuse_ros import fusion_node

    tree = _launch_tree()
    declared = _declared_arguments(tree)
    to_parameter = _module_dict(tree, "LAUNCH_ARG_TO_PARAMETER")
    for arg, parameter in to_parameter.items():
        assert arg in declared, f"{arg} maps to a parameter but is not declared"
        assert parameter in PARAMETERS, f"launch argument {arg} sets {parameter}, which the node does not declare"
    assert to_parameter["detector"] == "detector.enabled" and "backend" in to_parameter
    from lrcfuse_ros.diagnostics_publisher import DIAGNOSTICS_TOPIC

    topics = {fusion_node.THERMAL_TOPIC, fusion_node.RGB_TOPIC, fusion_node.FUSED_TOPIC, DIAGNOSTICS_TOPIC}
    to_topic = _module_dict(tree, "LAUNCH_ARG_TO_TOPIC")
    assert set(to_topic.values()) == topics
    assert set(to_topic) <= set(declared)


def _launch_function(name: str):
    """One plain-Python function of the launch file, compiled on its own (the launch packages are not needed)."""
    tree = _launch_tree()
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    namespace: dict = {"os": os}
    exec(compile(ast.Module(body=[func], type_ignores=[]), str(LAUNCH_FILE), "exec"), namespace)
    return namespace[name]


def test_launch_refuses_a_params_file_that_does_not_exist(tmp_path: Path) -> None:
    checked = _launch_function("_checked_params_file")
    with pytest.raises(FileNotFoundError, match=r"params_file: '.*missing.yaml' does not exist or is not a file"):
        checked(str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="params_file"):
        checked(str(tmp_path))  # a folder
    assert checked(str(REPO_ROOT / "config" / "fusion.yaml")) == str(REPO_ROOT / "config" / "fusion.yaml")
    assert "_checked_params_file(value[\"params_file\"])" in LAUNCH_FILE.read_text()


def test_launch_file_imports_with_the_launch_packages() -> None:
    pytest.importorskip("launch_ros", reason="launch / launch_ros have no PyPI wheel; on a ROS install this runs")
    import importlib.util

    spec = importlib.util.spec_from_file_location("fusion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


# -- README table -------------------------------------------------------------------------------------


def test_readme_documents_every_parameter() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## ROS 2 node") :]
    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", section, flags=re.M))
    assert set(PARAMETERS) <= documented, sorted(set(PARAMETERS) - documented)


def test_ros_free_modules_do_not_import_rclpy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lrcfuse_ros, lrcfuse_ros.params, lrcfuse_ros.stats, lrcfuse_ros.latest_slot, "
        "lrcfuse_ros.throttle, lrcfuse_ros.ros_env; print('rclpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "False"
