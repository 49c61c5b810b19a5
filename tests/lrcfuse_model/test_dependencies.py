"""lrcfuse_model.dependencies and the declared dependencies: every third-party import of lrcfuse_model/, lrcfuse_ros/
and launch/ is declared in setup.py (install_requires or an extra) and in package.xml (its rosdep key, or named in
the comment listing the packages without one); the extras the CLI checks are setup.py's extras; a command whose extra
is missing stops with one line naming it, exit status 2."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lrcfuse_model import cli
from lrcfuse_model.dependencies import (
    COMMAND_EXTRAS,
    DISTRIBUTION,
    EXTRA_MODULES,
    MissingDependency,
    install_hint,
    require,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("lrcfuse_model", "lrcfuse_ros", "launch")

# import name -> (its distribution in setup.py; None: no PyPI wheel, used where installed,
#                 its rosdep key in package.xml; None: no key, so package.xml's comment names it)
DECLARED: dict[str, tuple[str | None, str | None]] = {
    "torch": ("torch", None),
    "numpy": ("numpy", "python3-numpy"),
    "PIL": ("pillow", "python3-pil"),
    "yaml": ("pyyaml", "python3-yaml"),
    "tqdm": ("tqdm", "python3-tqdm"),
    "matplotlib": ("matplotlib", "python3-matplotlib"),
    "scipy": ("scipy", "python3-scipy"),
    "cv2": ("opencv-python-headless", "python3-opencv"),
    "onnx": ("onnx", None),
    "onnxscript": ("onnxscript", None),
    "onnxruntime": ("onnxruntime", "python3-onnxruntime-pip"),
    "openvino": ("openvino", None),
    "pycocotools": ("pycocotools", None),
    "rosbags": ("rosbags", None),
    "tensorrt": (None, None),  # NVIDIA's wheel for the CUDA version at hand (tensorrt-cu12 ...): named in its error
    "ultralytics": ("ultralytics", None),
    # ROS 2: the rosdep key is the package; pip-only machines get wheels from the `ros` extra where PyPI has them.
    "rclpy": ("ros-rclpy", "rclpy"),
    "sensor_msgs": ("ros-sensor-msgs", "sensor_msgs"),
    "std_msgs": ("ros-std-msgs", "std_msgs"),
    "diagnostic_msgs": ("ros-diagnostic-msgs", "diagnostic_msgs"),
    "rcl_interfaces": ("ros-rcl-interfaces", "rcl_interfaces"),
    "ament_index_python": ("ros-ament-index-python", "ament_index_python"),
    "vision_msgs": (None, "vision_msgs"),
    "launch": (None, "launch"),
    "launch_ros": (None, "launch_ros"),
    "diagnostic_updater": (None, "diagnostic_updater"),
    "cv_bridge": (None, "cv_bridge"),
    "message_filters": (None, "message_filters"),
}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files importing it (module level or inside functions), outside the stdlib."""
    ours = {"lrcfuse_model", "lrcfuse_ros"}
    found: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ours:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def setup_requirements() -> tuple[set[str], dict[str, set[str]]]:
    """setup.py's install_requires and extras_require, as normalised distribution names (read, never run)."""
    call = next(
        n for n in ast.walk(ast.parse((ROOT / "setup.py").read_text())) if isinstance(n, ast.Call) and n.keywords
    )
    kw = {k.arg: k.value for k in call.keywords}

    def name(requirement: str) -> str:
        return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    install = {name(r) for r in ast.literal_eval(kw["install_requires"])}
    extras = {extra: {name(r) for r in reqs} for extra, reqs in ast.literal_eval(kw["extras_require"]).items()}
    return install, extras


def package_xml() -> tuple[set[str], str]:
    """package.xml's exec_depend keys and the text of its comments."""
    text = (ROOT / "package.xml").read_text(encoding="utf-8")
    keys = {e.text.strip() for e in ET.fromstring(text).iter("exec_depend")}
    return keys, " ".join(re.findall(r"<!--(.*?)-->", text, flags=re.S))


def test_every_third_party_import_is_known_here():
    unknown = {m: sorted(files) for m, files in third_party_imports().items() if m not in DECLARED}
    assert not unknown, (
        f"new third-party imports {unknown}: declare each in setup.py (install_requires, or an extra in "
        "lrcfuse_model/dependencies.py's EXTRA_MODULES) and package.xml (its rosdep key), then add it to DECLARED here"
    )


def test_every_import_is_declared_in_setup_py():
    install, extras = setup_requirements()
    declared = install.union(*extras.values())
    missing = {
        module: dist
        for module in third_party_imports()
        if (dist := DECLARED.get(module, (None, None))[0]) is not None and dist not in declared
    }
    assert not missing, f"imported but not in setup.py's install_requires or extras: {missing}"


def test_every_import_is_declared_in_package_xml():
    keys, comments = package_xml()
    missing = []
    for module in third_party_imports():
        dist, key = DECLARED.get(module, (None, None))
        if key is not None and key not in keys:
            missing.append(f"{module}: <exec_depend>{key}</exec_depend>")
        if key is None and module not in comments:
            missing.append(f"{module}: no rosdep key, so name it (and its pip command) in package.xml's comment")
    assert not missing, missing


def test_extras_the_cli_checks_are_setup_py_extras_and_provide_their_modules():
    install, extras = setup_requirements()
    for extra, modules in EXTRA_MODULES.items():
        assert extra in extras, f"dependencies.EXTRA_MODULES names extra {extra!r}, which setup.py does not have"
        for module in modules:
            assert DECLARED[module][0] in extras[extra] | install, f"extra {extra!r} does not install {module}"
    for command, needed in COMMAND_EXTRAS.items():
        assert command in cli.COMMANDS, f"COMMAND_EXTRAS names {command!r}, which is not an lrcfuse command"
        assert set(needed) <= set(EXTRA_MODULES)
    # Every import outside install_requires belongs to an extra the code can name in its error.
    optional = {m for m in third_party_imports() if DECLARED.get(m, (None, None))[0] not in install}
    named = set().union(*EXTRA_MODULES.values())
    without_extra = {m for m in optional - named if DECLARED[m][0] is not None}
    assert not without_extra, f"optional imports no extra of dependencies.EXTRA_MODULES provides: {without_extra}"


def test_hints_name_the_real_distribution():
    setup_py = (ROOT / "setup.py").read_text()
    assert 'package_name = "lrcfuse_ros"' in setup_py and "name=package_name" in setup_py
    assert DISTRIBUTION == "lrcfuse_ros" and install_hint("bag") == 'pip install "lrcfuse_ros[bag]"'
    stale = []
    for path in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), ROOT / "package.xml", ROOT / "scripts" / "setup.sh"]:
        stale += [f"{path.name}: {m}" for m in re.findall(r"lrcfuse\[\w+", path.read_text(encoding="utf-8"))]
    for folder in SOURCES + ("scripts",):  # what users read; tests' skip reasons are their authors' to keep
        for path in (ROOT / folder).rglob("*.py"):
            stale += [f"{path.name}: {m}" for m in re.findall(r"lrcfuse\[\w+", path.read_text(encoding="utf-8"))]
    assert not stale, f"install hints must name the distribution lrcfuse_ros: {stale}"


def test_require_names_what_is_missing_and_the_pip_command(monkeypatch):
    require("detect", "detection mAP", modules=("numpy",))  # installed: nothing happens
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # as on a machine without it
    with pytest.raises(
        MissingDependency,
        match=r'^detection mAP needs pycocotools, which is not installed: pip install "lrcfuse_ros\[detect\]"$',
    ):
        require("detect", "detection mAP")


@pytest.mark.parametrize(
    ("command", "module", "extra"),
    [("fuse-bag", "rosbags", "bag"), ("detect-eval", "pycocotools", "detect"), ("export", "onnxscript", "export")],
)
def test_a_command_without_its_extra_is_one_line_and_exit_2(command, module, extra, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)
    assert cli.main([command]) == 2
    err = capsys.readouterr().err.strip()
    hint = f'pip install "lrcfuse_ros[{extra}]"'
    assert err == f"lrcfuse {command}: error: this command needs {module}, which is not installed: {hint}"
