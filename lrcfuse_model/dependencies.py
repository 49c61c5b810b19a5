"""Optional dependencies: which pip extra provides which packages, what each ``lrcfuse`` command needs, and the
one-line error naming the extra when something is missing.

The package installs as the distribution ``lrcfuse_ros`` (setup.py's name, which is also the ROS package's name),
so every hint reads ``pip install "lrcfuse_ros[EXTRA]"``. What every command needs (torch, numpy, scipy, Pillow,
PyYAML, tqdm, matplotlib, OpenCV) is in ``install_requires``; what only some commands need is an extra, checked
before the command starts (:func:`require_for_command`) so that a missing package is one line and exit status 2,
not a traceback half-way through a run. ``tests/lrcfuse_model/test_dependencies.py`` checks this table against
setup.py and package.xml. Imports nothing heavy: the CLI reads it before any command runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

__all__ = [
    "COMMAND_EXTRAS",
    "DISTRIBUTION",
    "EXTRA_MODULES",
    "MissingDependency",
    "install_hint",
    "require",
    "require_for_command",
]

DISTRIBUTION = "lrcfuse_ros"

# pip extra -> the modules (import names) it provides; setup.py's extras_require lists their distributions.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "bag": ("rosbags",),
    "detect": ("pycocotools",),
    "export": ("onnx", "onnxscript", "onnxruntime"),
    "openvino": ("openvino",),
    "ultralytics": ("ultralytics",),
    "ros": ("rclpy", "rcl_interfaces", "ament_index_python", "sensor_msgs", "std_msgs", "diagnostic_msgs", "rosbags"),
}

# `lrcfuse` subcommand -> the extras it cannot run without (commands not listed need only install_requires).
COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "fuse-bag": ("bag",),  # rosbags reads and writes the bag files
    "detect-eval": ("detect",),  # pycocotools' COCOeval computes the mAP
    "export": ("export",),  # torch.onnx needs onnx + onnxscript; the export is checked on ONNX Runtime
}


class MissingDependency(ImportError):
    """An optional package is not installed; the message names it and the pip command that installs it."""


def install_hint(extra: str) -> str:
    """``pip install "lrcfuse_ros[extra]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (found without importing them)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(extra: str, needed_by: str, modules: Iterable[str] | None = None) -> None:
    """Raise :class:`MissingDependency` when a module of ``extra`` (or only ``modules`` of it) is not installed."""
    missing = missing_modules(EXTRA_MODULES[extra] if modules is None else modules)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise MissingDependency(
            f"{needed_by} needs {', '.join(missing)}, which {verb} not installed: {install_hint(extra)}"
        )


def require_for_command(command: str) -> None:
    """Check the extras of ``lrcfuse COMMAND`` (see :data:`COMMAND_EXTRAS`) before it starts."""
    for extra in COMMAND_EXTRAS.get(command, ()):
        require(extra, "this command")
