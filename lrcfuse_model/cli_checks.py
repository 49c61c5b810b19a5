"""What the ``lrcfuse`` command checks before it runs anything, and the exit codes it ends with.

Exit codes (:data:`EXIT_OK` ...): 0 done; 1 a failed run (an input that could not be fused, a file that
could not be written part-way, a batch with failed pairs); 2 a usage error: an option or config value
that cannot work, found before anything is written; 128 + N when stopped by signal N (130 for Ctrl-C,
143 for SIGTERM; training saves its checkpoint first). Every error is one line on stderr naming the
option or file and what was expected, never a traceback of a known mistake.

:func:`check_command` runs after the options are resolved and before the subcommand:

* outputs (``--out``, ``--output``, ``--json``, ``--report`` ...): not an input (the output folder of
  ``fuse`` is not, and is not inside, ``--ir`` or ``--vi``; the output file is not an input file: a
  run would otherwise overwrite the images it reads), a folder where a folder is expected and a file
  where a file is, with a writable place to create it (not under a file, not on a read-only file
  system);
* ``threads`` >= 0 and ``device`` ``cpu`` / ``cuda`` / ``cuda:N``, with CUDA present where PyTorch runs;
* the ``data`` section (thermal normalisation ranges, size policy, homography), through the one
  preprocessing path's own checks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError
from .images.preprocess import SIZE_MISMATCH_POLICIES, THERMAL_NORMS, load_homography

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGNAL_BASE = 128  # the shell's convention: killed by signal N -> 128 + N

# Keys whose values are a closed set: argparse choices, so that --help lists them and a typo is refused.
CHOICES: dict[str, Sequence[str]] = {"size_mismatch": SIZE_MISMATCH_POLICIES, "thermal_norm": THERMAL_NORMS}

# What each subcommand writes: (section, key, kind); kind "dir" (a folder, created when missing) or "file".
OUTPUTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "fuse": (("fuse", "out", "dir"),),  # a file for a single pair: see _fuse_outputs
    "train": (("train", "out", "dir"),),
    "eval": (("eval", "out", "dir"),),
    "export": (("export", "out", "file"),),
    "bench": (("bench", "json", "file"),),
    "fuse-bag": (("bag", "output", "dir"), ("bag", "report", "file")),
    "detect-eval": (
        ("detect_eval", "out", "dir"),
        ("detect_eval", "json", "file"),
        ("detect_eval", "export_yolo", "dir"),
    ),
}
# What each subcommand reads, that no output may be (or, for a folder, be inside).
INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "fuse": (("fuse", "ir"), ("fuse", "vi"), ("fuse", "model"), ("fuse", "weights")),
    "fuse-bag": (("bag", "input"), ("bag", "model"), ("bag", "weights")),
    "export": (("export", "model"), ("export", "weights")),
    "train": (("train", "init"),),
    "eval": (("eval", "weights"),),
    "detect-eval": (("detect_eval", "weights"), ("detect_eval", "detector")),
}
# Inputs that may be folders; the others (weights, checkpoints) count only as files, so that a shipped model's name
# (``--model default``) is never taken for a folder of that name.
FOLDER_INPUTS = frozenset({"ir", "vi", "input"})
# Sections whose work runs on PyTorch whatever the backend option says.
TORCH_SECTIONS = ("train", "eval", "detect_eval")


def option(section: str, key: str) -> str:
    """How the user names a config key: ``--out (fuse.out)``."""
    return f"--{key.replace('_', '-')} ({section}.{key})"


def check_command(command: str, cfg: Mapping[str, Any], sections: Iterable[str]) -> None:
    """Every check of the module docstring for ``command`` with the resolved config ``cfg``; a
    :class:`ConfigError` (exit 2) names the first problem."""
    sections = list(sections)
    for section in sections:
        values = cfg[section]
        if "threads" in values and int(values["threads"]) < 0:
            raise ConfigError(
                f"{option(section, 'threads')}: expected 0 (all cores) or a number of threads >= 1, "
                f"got {values['threads']}"
            )
        if "device" in values and section != "export":  # export.device is the engine's GPU, checked by TensorRT
            torch_runs = section in TORCH_SECTIONS or values.get("backend", "torch") in ("torch", "auto")
            check_device(values["device"], option(section, "device"), torch_runs)
    if "data" in sections:
        load_homography(cfg["data"])  # checks the whole data section (thermal ranges, size policy, homography)
    inputs = [(s, k, cfg[s][k]) for s, k in INPUTS.get(command, ()) if s in cfg]
    outputs = _fuse_outputs(cfg) if command == "fuse" else OUTPUTS.get(command, ())
    for section, key, kind in outputs:
        check_output(cfg[section][key], kind, option(section, key), inputs)


def _fuse_outputs(cfg: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    """``fuse --out``: an image file when --ir and --vi are files (one pair), else a folder."""
    f = cfg["fuse"]
    single = bool(f["ir"] and f["vi"]) and Path(f["ir"]).is_file() and Path(f["vi"]).is_file()
    if single and f["out"]:
        from PIL import Image

        suffix = Path(f["out"]).suffix.lower()
        if suffix not in Image.registered_extensions():
            raise ConfigError(
                f"{option('fuse', 'out')} {f['out']}: one pair is written as an image file; expected a name "
                "ending in an image format such as .png, .tif or .jpg"
            )
    return (("fuse", "out", "file" if single else "dir"),)


def check_device(device: str, name: str, torch_runs: bool = True) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``; CUDA must be there when PyTorch is what runs on it (ONNX Runtime and
    TensorRT say themselves what they lack)."""
    if device == "cpu":
        return
    if not re.fullmatch(r"cuda(:\d+)?", str(device)):
        raise ConfigError(f"{name}: expected cpu, cuda or cuda:N, got {device!r}")
    if not torch_runs:
        return
    import torch

    if not torch.cuda.is_available():
        why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ConfigError(f"{name} {device}: CUDA is not available here ({why}, torch {torch.__version__}); use cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{name} {device}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 ...)")


def check_output(path_text: str, kind: str, name: str, inputs: Iterable[tuple[str, str, Any]] = ()) -> None:
    """An output path (``kind`` ``dir`` or ``file``) that can be written without touching an input; else
    a :class:`ConfigError` naming it. Empty: the command's default, nothing to check."""
    if not path_text:
        return
    path = Path(path_text)
    real = Path(os.path.realpath(path))
    for section, key, given in inputs:
        for item in given if isinstance(given, list) else [given]:
            if not item or not (Path(item).is_file() or (key in FOLDER_INPUTS and Path(item).is_dir())):
                continue  # a shipped model's name, or a missing input the command reports itself
            source = Path(os.path.realpath(item))
            if real == source or (source.is_dir() and source in real.parents):
                where = "is" if real == source else "is inside"
                raise ConfigError(
                    f"{name} {path} {where} the input {option(section, key)} {item}: writing there would "
                    "overwrite or mix with what is read; choose an output outside the inputs"
                )
    if path.exists() and kind == "dir" and not path.is_dir():
        raise ConfigError(f"{name} {path} is an existing file; expected a folder (created when missing)")
    if path.exists() and kind == "file" and path.is_dir():
        raise ConfigError(f"{name} {path} is an existing folder; expected a file name")
    existing = next(p for p in (path, *path.parents) if p.exists())  # '.' ends the chain of a relative path
    if existing != path and not existing.is_dir():
        raise ConfigError(f"{name} {path}: {existing} is a file, so no folder or file can be made inside it")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{name} {path}: cannot write in {folder} ({_why_not_writable(folder)})")


def _why_not_writable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "a read-only file system"
    except OSError:
        pass
    return "no write permission"


def signal_exit_code(stopped_by: str) -> int:
    """The exit status of a run stopped by the signal named ``stopped_by`` (``SIGINT`` -> 130), else 0."""
    import signal

    if stopped_by.startswith("SIG") and stopped_by in signal.Signals.__members__:
        return EXIT_SIGNAL_BASE + int(signal.Signals[stopped_by])
    return EXIT_OK
