"""Ending a node process on SIGINT / SIGTERM: within launch's 5 s, exit status 0, no traceback, at any moment.

``ros2 launch`` on Ctrl-C: the terminal's SIGINT reaches the node, launch sends its own SIGINT, then
SIGTERM after 5 s (``sigterm_timeout``) and SIGKILL after 5 s more; systemd and ``docker stop`` send
SIGTERM. What this module guarantees, and how:

* Only the first signal acts; later ones (launch's second SIGINT, the escalation to SIGTERM) are
  ignored, so no KeyboardInterrupt lands inside the clean-up (the traceback and ``terminate called
  without an active exception`` that ended the node when stop() was interrupted mid-join).
* While the node is being built (model loading), the first signal raises KeyboardInterrupt in the main
  thread: construction is abandoned and the process exits 0. Once it spins, the signal only sets a flag
  that :func:`spin_until_signal` polls every 0.1 s, so it never raises inside rclpy or a callback.
* An inference already in the network cannot be interrupted (a backend call is C++): the node gives it
  :data:`GRACE_S` to finish and publish, then leaves it. A process whose inference thread is still in
  the network ends with ``os._exit(0)`` after rclpy is shut down and the logs are flushed: a normal
  interpreter exit would tear down the backend's C++ state under the running thread and abort.
* A process ended by a signal always leaves through ``os._exit(0)`` once rclpy is shut down: the
  interpreter's tear-down restores the default handlers, so launch's second SIGINT arriving during
  it killed the process (exit -2) whenever the clean-up was quick (a signal during start-up).
* Not covered: the first ~0.5 s of the process, before ``main()`` runs (Python's own imports of the
  node module); a signal there ends it as Python does by default.
* A watchdog started by the first signal ends the process (status 0, one log line saying why) if the
  clean-up itself has not finished after :data:`DEADLINE_S`, whatever it is blocked on.

:func:`run_node` is the whole life of a node process (init, build, spin, clean-up) on these terms.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

# Seconds the node waits for a pair already in the network before leaving it unfinished.
GRACE_S = 2.0
# Seconds after the first signal after which the process ends whatever is still running: under
# launch's 5 s escalation with room for interpreter start-up delays on a loaded machine.
DEADLINE_S = 4.0
POLL_S = 0.1  # how often the spin loop looks at the flag


class ShutdownRequest:
    """SIGINT / SIGTERM handling for one process: a flag, an optional KeyboardInterrupt, a watchdog."""

    def __init__(self, deadline_s: float = DEADLINE_S, name: str = "node") -> None:
        self.requested = threading.Event()
        self.signal_name = ""
        self.interrupt = True  # raise KeyboardInterrupt on the first signal (while the node is being built)
        self._deadline_s = deadline_s
        self._name = name
        self._finished = threading.Event()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM in this process (SIGINT too: a background job may start with it ignored)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            return  # already stopping: launch's second SIGINT or its SIGTERM must not interrupt the clean-up
        self.signal_name = signal.Signals(signum).name
        self.requested.set()
        threading.Thread(target=self._watchdog, name="shutdown-watchdog", daemon=True).start()
        if self.interrupt:
            raise KeyboardInterrupt

    def _watchdog(self) -> None:
        if self._finished.wait(self._deadline_s):
            return
        print(
            f"[{self._name}] {self.signal_name}: clean-up not finished after {self._deadline_s:.0f} s; exiting now",
            file=sys.stderr,
        )
        exit_now(0)

    def finished(self) -> None:
        """The clean-up is done: the watchdog stands down."""
        self._finished.set()


def spin_until_signal(executor: Any, shutdown: ShutdownRequest, context_ok: Any) -> None:
    """Spin ``executor`` until a signal arrives or ``context_ok()`` turns false (the context shut down)."""
    shutdown.interrupt = False  # from here on the loop below notices the signal: nothing is raised into rclpy
    if shutdown.requested.is_set():
        return
    while not shutdown.requested.is_set() and context_ok():
        executor.spin_once(timeout_sec=POLL_S)


def exit_now(status: int) -> None:
    """Flush Python's streams and end the process at once, skipping interpreter tear-down.

    For a process whose inference thread is still inside a backend call: tearing the interpreter down
    under it aborts (``terminate called without an active exception``, exit -6).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe must not keep the process alive
            pass
    os._exit(status)


def run_node(
    make_node: Callable[[], Node], name: str, args: Sequence[str], startup_errors: tuple[type[BaseException], ...]
) -> int:
    """Init rclpy with ``args``, build the node, spin it until SIGINT / SIGTERM, clean up; the exit status.

    ``make_node`` must return a node with ``stop() -> int`` (pairs left unfinished) and ``destroy_node()``.
    Our own signal handling (rclpy's is off, see the module docstring). A bad ``--ros-args`` (a
    ``--params-file`` that does not exist or does not parse) or one of ``startup_errors`` while building
    the node: one line ``[name] cannot start: ...`` on stderr, status 2, no traceback.
    """
    shutdown = ShutdownRequest(name=name)
    shutdown.install()
    try:
        rclpy.init(args=list(args), signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy.RCLError as exc:
        print(f"[{name}] cannot start: {exc}", file=sys.stderr)
        return 2
    node = None
    unfinished = 0
    try:
        try:
            node = make_node()
        except startup_errors as exc:
            print(f"[{name}] cannot start: {exc}", file=sys.stderr)
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_signal(executor, shutdown, rclpy.ok)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        shutdown.interrupt = False  # a signal during the clean-up below must not raise into it
        if node is not None:
            unfinished = node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
        shutdown.finished()
    if unfinished or shutdown.requested.is_set():
        # Ended by a signal: skip the interpreter's tear-down, which resets the signal handlers (launch's second
        # SIGINT would kill the process, exit -2) and would abort under an inference thread still in the backend.
        exit_now(0)
    return 0
