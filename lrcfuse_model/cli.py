"""The ``lrcfuse`` command: one convention for every subcommand.

Every option is a key of the defaults file ``cfg/default.yaml`` (``--batch-size`` is
``train.batch_size``), its help text is that key's comment, and ``--config FILE`` overrides the
defaults before the options do. Unknown keys in a config file are rejected with the list of valid
keys; option values are checked against the default's type.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .cli_checks import CHOICES, EXIT_FAILED, EXIT_SIGNAL_BASE, EXIT_USAGE, check_command, signal_exit_code
from .config import DEFAULTS_PATH, ConfigError, load_defaults, resolve
from .dependencies import MissingDependency, require_for_command

# FAST_MALLOC_ENV and NO_MALLOC_TUNING_ENV lived here before malloc_tuning: still importable from here.
from .malloc_tuning import FAST_MALLOC_ENV, NO_MALLOC_TUNING_ENV, _reexec_with_fast_malloc  # noqa: F401

# Element types of list options whose default is empty.
_LIST_ELEMENT_TYPES = {
    "homography": float,
    "feature_layers": int,
    "data": str,
    "exclude": str,
    "grid_names": str,
    "zoom_box": float,
}


def _yaml_comments() -> dict[tuple[str, str], str]:
    """``(section, key) -> comment`` from the defaults file, for --help."""
    comments: dict[tuple[str, str], str] = {}
    section = ""
    for line in DEFAULTS_PATH.read_text(encoding="utf-8").splitlines():
        top = re.match(r"^(\w+):\s*(#.*)?$", line)
        if top:
            section = top.group(1)
            continue
        m = re.match(r"^\s+(\w+):[^#]*#\s*(.*)$", line)
        if m and section:
            comments[(section, m.group(1))] = m.group(2)
    return comments


def _add_section_options(parser: argparse.ArgumentParser, defaults: dict[str, Any], sections: Sequence[str]) -> None:
    comments = _yaml_comments()
    seen: dict[str, str] = {}
    for section in sections:
        group = parser.add_argument_group(f"{section} options (config section '{section}')")
        for key, value in defaults[section].items():
            flag = key.replace("_", "-")
            if flag in seen:
                flag = f"{section.replace('_', '-')}-{flag}"
            seen[flag] = section
            dest = f"{section}.{key}"
            help_text = comments.get((section, key), "")
            help_text = f"{help_text} [default: {value!r}]" if help_text else f"[default: {value!r}]"
            kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text}
            if isinstance(value, bool):
                group.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, **kwargs)
            elif isinstance(value, list):
                elem = type(value[0]) if value else _LIST_ELEMENT_TYPES.get(key, str)
                group.add_argument(f"--{flag}", nargs="*", type=elem, metavar=elem.__name__.upper(), **kwargs)
            elif key in CHOICES:
                group.add_argument(f"--{flag}", choices=CHOICES[key], **kwargs)
            else:
                group.add_argument(f"--{flag}", type=type(value), metavar=type(value).__name__.upper(), **kwargs)


def _overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for dest, value in vars(args).items():
        if "." in dest:
            section, key = dest.split(".", 1)
            overrides.setdefault(section, {})[key] = value
    return overrides


def _threads(n: int) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


# -- subcommands ----------------------------------------------------------------------------------


def cmd_fuse(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from .images.preprocess import InputError, read_image
    from .inference.backends import create_backend
    from .inference.fuser import Fuser, fuse_folders

    f = cfg["fuse"]
    for key in ("ir", "vi", "out"):
        if not f[key]:
            raise ConfigError(f"lrcfuse fuse needs --{key} (fuse.{key})")
    _threads(f["threads"])
    backend = create_backend(
        f["backend"], f["weights"] or f["model"], f["device"], threads=f["threads"], tile=f["tile"],
        max_memory=f["max_memory"],
    )  # fmt: skip
    fuser = Fuser(data_cfg=cfg["data"], backend=backend)
    ir, vi, out = Path(f["ir"]), Path(f["vi"]), Path(f["out"])
    if ir.is_file() and vi.is_file():  # a single pair: --out is the output file
        try:
            fused = fuser(read_image(ir), read_image(vi), names=(str(ir), str(vi)))
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fused).save(out)  # an OSError here (disk full...) is one line, exit 1: see main
        print(f"fused {ir.name} + {vi.name} -> {out} ({fused.shape[1]}x{fused.shape[0]})")
        return 0
    started = time.perf_counter()
    report = fuse_folders(ir, vi, out, fuser, progress=lambda it: tqdm(it, desc="fuse", unit="pair"))
    wall = time.perf_counter() - started
    seconds = [r["seconds"] for r in report.fused]
    print(
        f"fused {len(report.fused)} pairs into {out} in {wall:.1f} s"
        + (f" ({np.mean(seconds):.3f} s per pair, median {np.median(seconds):.3f} s)" if seconds else "")
    )
    if report.report_error:  # the per-pair outcome is not lost with the report file: it is printed below
        print(f"error: {report.report_error}", file=sys.stderr)
    if report.failed:
        where = "listed below" if report.report_error else f"details in {out / 'report.json'}"
        print(f"{len(report.failed)} pairs FAILED ({where}):", file=sys.stderr)
        for row in report.failed:
            print(f"  {row['name']}: {row['error']}", file=sys.stderr)
    return EXIT_FAILED if report.failed or report.report_error else 0


def cmd_train(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    from .training.trainer import Trainer

    summary = Trainer(cfg).run()
    print(json.dumps(summary, indent=2))
    return signal_exit_code(summary["stopped_by"])  # Ctrl-C: saved, then 130 (a caller sees it was interrupted)


def cmd_eval(cfg: dict[str, Any], args: argparse.Namespace) -> int:
    from .evaluation.evaluate import evaluate

    e = cfg["eval"]
    _threads(e["threads"])
    result = evaluate(
        e["methods"],
        e["datasets"],
        e["out"],
        data_root=e["data_root"],
        weights=e["weights"],
        device=e["device"],
        data_cfg=cfg["data"],
        limit=e["limit"],
        grid_images=e["grid_images"],
        grid_names=e["grid_names"],
        zoom=e["zoom"],
        zoom_box=e["zoom_box"],
        save_fused=e["save_fused"],
    )
    print()
    print(result.markdown)
    print(f"wrote {len(result.files)} files to {result.out} in {result.wall_seconds:.1f} s:")
    for path in result.files:
        print(f"  {path}")
    if result.failures:
        print(
            f"{len(result.failures)} images FAILED and were skipped (listed in {result.out / 'failures.csv'}):",
            file=sys.stderr,
        )
        for row in result.failures[:30]:
            print(f"  {row['dataset']} {row['method']} {row['image']}: {row['error']}", file=sys.stderr)
        if len(result.failures) > 30:
            print(f"  ... and {len(result.failures) - 30} more", file=sys.stderr)
        return 1
    return 0


def _lazy(module: str, function: str) -> Callable[[dict, argparse.Namespace], int]:
    """A subcommand implemented in its own module, imported only when that subcommand runs."""

    def run(cfg: dict[str, Any], args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(cfg)

    return run


COMMANDS: dict[str, tuple[Callable[[dict, argparse.Namespace], int], Sequence[str], str]] = {
    "fuse": (
        cmd_fuse,
        ("fuse", "data"),
        "fuse every pair of --ir DIR and --vi DIR (same file names) into --out DIR, or one pair of files",
    ),
    "train": (
        cmd_train,
        ("train", "model", "rt_model", "loss", "data"),
        "train LRCFuse (or LRCFuse-RT: --architecture lrcfuse-rt) on paired folders (--data DIR ..., each with "
        "ir/ and vi/); resumes with --resume",
    ),
    "eval": (
        cmd_eval,
        ("eval", "data"),
        "evaluate fusion methods (ours, average, max, lrrnet, NAME=DIR) on paired datasets: the ten metrics per "
        "image, summary tables with ranks, bar charts and comparison grids in --out",
    ),
    "export": (
        _lazy("lrcfuse_model.inference.export_check", "cmd_export"),
        ("export",),
        "export the model to ONNX (--format onnx, checked against PyTorch) or build a TensorRT engine "
        "(--format engine, NVIDIA GPU)",
    ),
    "bench": (
        _lazy("lrcfuse_model.inference.bench", "cmd_bench"),
        ("bench",),
        "time every inference backend at several frame sizes (ms per frame, fps, memory) and where the time "
        "goes in the PyTorch model",
    ),
    "fuse-bag": (
        _lazy("lrcfuse_model.streams.bag", "cmd_fuse_bag"),
        ("bag", "data"),
        "fuse the thermal + RGB image topics of a recorded rosbag2 (sqlite3 or MCAP) into a new bag",
    ),
    "detect-eval": (
        _lazy("lrcfuse_model.detection.detect_eval", "cmd_detect_eval"),
        ("detect_eval", "data"),
        "detection mAP of one detector on infrared, visible and fused inputs of a labelled dataset",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    defaults = load_defaults()
    parser = argparse.ArgumentParser(
        prog="lrcfuse",
        description="LRCFuse infrared + visible image fusion. Every option below a subcommand is a key of "
        f"the defaults file {DEFAULTS_PATH}; --config FILE overrides those defaults.",
    )
    parser.add_argument("--version", action="version", version=f"lrcfuse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, sections, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--config", metavar="FILE", help="YAML file overriding the defaults (any subset of sections/keys)"
        )
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        _add_section_options(p, defaults, sections)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from_console = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if from_console and argv and argv[0] in COMMANDS:  # never exec over a caller's process
        _reexec_with_fast_malloc(argv, "lrcfuse_model.cli")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    func, sections, _ = COMMANDS[args.command]
    from .inference.runtimes import BackendUnavailable  # every subcommand runs on torch: costs nothing extra

    # One line per error, never a traceback of a known mistake (exit codes: lrcfuse_model/cli_checks.py).
    try:
        require_for_command(args.command)  # a missing optional package: one line naming the pip extra, exit 2
        cfg = resolve(args.config, _overrides_from_args(args))
        check_command(args.command, cfg, sections)  # outputs, devices, threads, data settings: before any work
        return func(cfg, args)
    except (ConfigError, FileNotFoundError, ValueError, BackendUnavailable, MissingDependency) as exc:
        print(f"lrcfuse {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a write that failed part-way (read-only, disk full, a file in the way...)
        print(f"lrcfuse {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError as exc:  # a frame too large for this machine (inference/tiling.py names the way out)
        print(f"lrcfuse {args.command}: error: {exc or 'out of memory'}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"lrcfuse {args.command}: interrupted", file=sys.stderr)
        return EXIT_SIGNAL_BASE + 2  # SIGINT


if __name__ == "__main__":
    sys.exit(main())
