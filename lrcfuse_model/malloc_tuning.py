"""glibc allocator settings for fast CPU inference, and restarting a process once with them.

glibc's default allocator returns large activation buffers to the OS after every layer and
page-faults them back in on the next; :data:`FAST_MALLOC_ENV` keeps them (3.1x faster fusing TNO
pairs here). glibc reads these variables only at process start, so a command that wants them
restarts itself once (:func:`_reexec_with_fast_malloc`); :data:`NO_MALLOC_TUNING_ENV` turns that off.

Torch-free and light on purpose: the ``lrcfuse`` command, the ROS fusion node, its launch file and
``lrcfuse bench`` all read it, and the launch file must not import torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

FAST_MALLOC_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "100000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}
NO_MALLOC_TUNING_ENV = "LRCFUSE_NO_MALLOC_TUNING"


def _reexec_with_fast_malloc(argv: Sequence[str], module: str) -> None:
    """Restart once as ``python -m module argv`` with the allocator settings (glibc reads them only at start).

    Used by ``lrcfuse`` (``module="lrcfuse_model.cli"``) and the ROS fusion node's ``main()``
    (``module="lrcfuse_ros.fusion_node"``). Returns without restarting off Linux, when
    :data:`NO_MALLOC_TUNING_ENV` is set, when the settings are there already, or when exec fails.
    """
    if sys.platform != "linux" or os.environ.get(NO_MALLOC_TUNING_ENV):
        return
    if all(os.environ.get(k) for k in FAST_MALLOC_ENV):
        return
    env = dict(os.environ)
    for k, v in FAST_MALLOC_ENV.items():
        env.setdefault(k, v)
    env[NO_MALLOC_TUNING_ENV] = "1"  # never loop
    try:
        os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)
    except OSError:
        return  # carry on with the default allocator


def allocator_env(tuned: bool, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process with glibc's default (``tuned=False``) or the tuned allocator.

    ``base`` (default: this process's environment) without any of the settings, plus them when
    ``tuned``; :data:`NO_MALLOC_TUNING_ENV` is set so that the child never restarts itself.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in FAST_MALLOC_ENV}
    if tuned:
        env.update(FAST_MALLOC_ENV)
    env[NO_MALLOC_TUNING_ENV] = "1"
    return env


def malloc_tuned() -> bool:
    """Whether this process runs with exactly the tuned settings."""
    return all(os.environ.get(k) == v for k, v in FAST_MALLOC_ENV.items())
