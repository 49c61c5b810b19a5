"""The one defaults file every command reads, and strict overrides of it.

`cfg/default.yaml` holds every tunable value, grouped in sections (``model``, ``loss``, ``data``,
``train``, ``fuse``, ...). A user file given with ``--config`` and command-line options override
it. Overrides are checked against the defaults: a key that does not exist is an error listing
the valid keys (and the closest match), and a value whose type differs from the default's is an
error naming the key and the expected type. Typos therefore fail loudly instead of being ignored.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_PATH = Path(__file__).with_name("cfg") / "default.yaml"


class ConfigError(ValueError):
    """An override names an unknown key or carries a value of the wrong type."""


def load_defaults() -> dict[str, Any]:
    """Return a fresh copy of the packaged defaults."""
    with open(DEFAULTS_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML override file; an empty file is an empty override."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _type_name(value: Any) -> str:
    return "list" if isinstance(value, (list, tuple)) else type(value).__name__


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Return ``value`` converted to the type of ``default`` where that is lossless, else raise."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif default is None:
        return value
    raise ConfigError(
        f"config key '{key}': expected {_type_name(default)} (like the default {default!r}), "
        f"got {_type_name(value)} {value!r}"
    )


def merge(base: Mapping[str, Any], override: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return ``base`` updated with ``override``, rejecting unknown keys and wrong types."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if key not in out:
            valid = sorted(out)
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown config key '{dotted}'.{hint} Valid keys"
                f"{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(valid)}"
            )
        if isinstance(out[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{dotted}' is a section: expected a mapping, got {value!r}")
            out[key] = merge(out[key], value, prefix=f"{dotted}.")
        else:
            out[key] = _coerce(dotted, out[key], value)
    return out


def split_list(items: str | Iterable[Any]) -> list[str]:
    """A list option's items, where commas also separate (``--methods ir,vi ours`` -> 3 items)."""
    if isinstance(items, str):
        items = [items]
    return [s.strip() for item in items for s in str(item).split(",") if s.strip()]


def refuse_repeats(names: Iterable[str], what: str) -> None:
    """A :class:`ConfigError` naming every name that ``names`` holds more than once (``what``: e.g. ``'input(s)'``)."""
    names = list(names)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{what} given twice: {', '.join(dupes)}")


def parse_size(text: str) -> tuple[int, int]:
    """``'640x512'`` (WIDTHxHEIGHT, as cameras are described) -> ``(height, width)`` = ``(512, 640)``."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) < 2 or int(m.group(2)) < 2:
        raise ValueError(f"expected a frame size WIDTHxHEIGHT like 640x512 (each at least 2), got {text!r}")
    return int(m.group(2)), int(m.group(1))


def resolve(config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then ``config_file``, then ``overrides`` (a nested mapping), all validated."""
    cfg = load_defaults()
    if config_file:
        cfg = merge(cfg, load_yaml(config_file))
    if overrides:
        cfg = merge(cfg, overrides)
    return cfg
