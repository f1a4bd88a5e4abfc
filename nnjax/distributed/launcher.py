"""Starting N local processes of one command, for developing multi-process code."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

from nnjax.distributed._trampoline import tied_to_launcher
from nnjax.distributed.process import ENV_ADDRESS, ENV_NUM_PROCESSES, ENV_PROCESS_ID

__all__ = ["GRACE_S", "describe", "exit_status", "free_port", "launch", "reserved_port"]

GRACE_S = 10.0
"""Seconds the other processes get to exit after one has failed, before they are killed."""

#: Seconds after the SIGINT of a stop before SIGTERM (SIGKILL follows at :data:`GRACE_S`).
_INTERRUPT_S = GRACE_S / 2
#: JAX's preemption service catches SIGTERM (a preemption notice) and goes on: the
#: launched processes run without it (unless their environment names it).
_PREEMPTION_ENV = "JAX_ENABLE_PREEMPTION_SERVICE"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now (the OS picks it).

    Args:
      host: the interface to bind, ``"127.0.0.1"`` by default.

    Returns:
      A port number in ``[1, 65535]``, free when it was asked for (another program may
      take it before it is used).

    Example:
      >>> 0 < free_port() < 65536
      True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A free TCP port on ``host``, kept from other programs while the block runs.

    :func:`free_port`'s port is free when asked for, and another program (an outgoing
    connection's ephemeral port, a server) may take it before the coordinator binds it.
    Here a socket holds it for the block: bound with ``SO_REUSEADDR`` and
    ``SO_REUSEPORT``, never listening. JAX's coordinator (gRPC binds with both
    options, as the same user) still listens on it, and process 0's own check for a
    busy port passes, while the OS hands the port to no outgoing connection and a
    program binding it without those options gets ``EADDRINUSE``. Without
    ``SO_REUSEPORT`` (Windows) this is :func:`free_port`.

    Args:
      host: the interface to bind, ``"127.0.0.1"`` by default.

    Yields:
      The port number.

    Example:
      >>> with reserved_port() as port:
      ...     0 < port < 65536
      True
    """
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is None:
        yield free_port(host)
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


def launch(
    command: Sequence[str],
    processes: int,
    *,
    port: int | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Runs ``command`` as ``processes`` local processes joined by :func:`initialize`.

    Each process gets :data:`~nnjax.distributed.process.ENV_ADDRESS` (a port on
    127.0.0.1, held free for the coordinator by :func:`reserved_port`),
    :data:`~nnjax.distributed.process.ENV_NUM_PROCESSES` and its own
    :data:`~nnjax.distributed.process.ENV_PROCESS_ID`, so a script that calls
    ``nnjax.distributed.initialize()`` with no arguments joins the group. When one
    process fails, the others are stopped, so a crash never leaves the group hanging:
    SIGINT first (as Ctrl-C: ``nnjax train`` cleans up and exits with 130, a script
    gets ``KeyboardInterrupt``), SIGTERM after half of :data:`GRACE_S`, SIGKILL after
    :data:`GRACE_S` seconds. The processes run with JAX's preemption service off
    (``JAX_ENABLE_PREEMPTION_SERVICE=false`` unless ``env`` sets it), which would
    catch SIGTERM and go on.

    Each process starts in a session (and process group) of its own, and stopping it
    signals its whole group: a ``sh -c '...'`` wrapper's children stop with it. Called
    from the main thread, ``launch`` also stops every process when it gets SIGTERM,
    SIGHUP or SIGINT (Ctrl-C: the processes, in sessions of their own, do not get the
    terminal's), and returns ``128 + N`` for signal ``N``. On Linux, a launcher that is
    killed (SIGKILL, where it can stop nothing) takes its processes with it: each
    asks the kernel for SIGKILL when the thread that started it ends
    (``PR_SET_PDEATHSIG``; their own children, a wrapper's, are not covered).

    Args:
      command: the program and its arguments, e.g. ``["python", "train.py"]``.
      processes: how many processes to start, ``>= 1``.
      port: the coordinator's port; by default one :func:`reserved_port` holds until
        every process has ended.
      timeout_s: stop every process after this many seconds (``None``: no limit).
      env: the environment for the processes (default: this process's).

    Returns:
      0 if every process succeeded; else the exit status of the first one that failed
      (``128 + N`` when killed by signal ``N``, as a shell reports it; 124 when
      ``timeout_s`` ran out, as ``timeout(1)`` does; ``128 + N`` when the launcher got
      signal ``N``). Which process failed, and how, is
      said on stderr in one line (``nnjax launch: process 1 of 2 was killed by
      SIGKILL ...``), within about 0.05 s of its end.

    Raises:
      ValueError: an empty ``command`` or ``processes < 1``.

    Example:
      >>> launch(["true"], processes=2)  # POSIX true(1) in two processes
      0
    """
    if isinstance(command, str) or not command:
        raise ValueError(f"launch: `command` must be a non-empty list of strings, got {command!r}")
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"launch: `processes` must be an int >= 1, got {processes!r}")
    with contextlib.ExitStack() as stack:
        if not port:  # held until every process has ended
            port = stack.enter_context(reserved_port())
        return _run(command, processes, f"127.0.0.1:{port}", timeout_s, env)


def _run(
    command: Sequence[str],
    processes: int,
    address: str,
    timeout_s: float | None,
    env: Mapping[str, str] | None,
) -> int:
    """:func:`launch` once its arguments are checked and the port is chosen."""
    base = dict(os.environ if env is None else env)
    base.setdefault(_PREEMPTION_ENV, "false")
    procs: list[subprocess.Popen] = []
    status = 1  # an exception here (KeyboardInterrupt outside the main thread, say)
    signals = _Signals()
    previous = _catch_signals(signals)
    try:
        with signals.deferred():  # a signal mid-Popen would leave a child untracked
            _start(procs, command, processes, address, base)
        status = _wait(procs, timeout_s)
    except _Signalled as got:
        running = sum(p.poll() is None for p in procs)
        _say(f"got {signal.Signals(got.signum).name}; stopping the {running} running process(es)")
        status = 128 + got.signum
    finally:
        signals.stopping = True
        _stop(procs, leftovers=status != 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def _start(
    procs: list[subprocess.Popen],
    command: Sequence[str],
    processes: int,
    address: str,
    base: dict[str, str],
) -> None:
    """Starts the processes, each appended to ``procs`` as soon as it exists."""
    started = tied_to_launcher(command, base)
    for i in range(processes):
        ids = {ENV_ADDRESS: address, ENV_NUM_PROCESSES: str(processes), ENV_PROCESS_ID: str(i)}
        procs.append(subprocess.Popen(started, env=base | ids, start_new_session=True))


class _Signalled(Exception):
    """The launcher got ``signum`` (SIGTERM, SIGHUP, SIGINT): stop every process."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """What the launcher's signal handler does: raise, hold back, or ignore a signal.

    Attributes:
      caught: the first signal received, or ``None``.
      held: a signal that arrives now is recorded and raised when the hold ends (set
        while the processes are being started, so that none is left untracked).
      stopping: the stop is under way: signals are ignored (it is bounded by
        :data:`GRACE_S`).
    """

    def __init__(self) -> None:
        self.caught: int | None = None
        self.held = False
        self.stopping = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping or self.caught is not None:
            return
        self.caught = signum
        if not self.held:
            raise _Signalled(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Holds signals back inside the block; raises the one caught, if any, at its end."""
        self.held = True
        try:
            yield
        finally:
            self.held = False
        if self.caught is not None:
            raise _Signalled(self.caught)


def _catch_signals(signals: _Signals) -> dict[int, Any]:
    """Routes SIGTERM, SIGHUP and SIGINT to ``signals``; the previous handlers.

    Only the first signal counts. Only the main thread can set handlers: elsewhere,
    nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        previous[signum] = signal.signal(signum, signals.handle)
    return previous


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: ``128 + N`` for a kill by signal ``N``.

    Example:
      >>> exit_status(3), exit_status(-9)
      (3, 137)
    """
    return 128 - returncode if returncode < 0 else returncode


def describe(index: int, count: int, returncode: int) -> str:
    """One line saying how process ``index`` of ``count`` ended.

    Example:
      >>> describe(1, 2, -9)
      'process 1 of 2 was killed by SIGKILL (exit status 137)'
      >>> describe(0, 2, 1)
      'process 0 of 2 exited with status 1'
    """
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        status = exit_status(returncode)
        return f"process {index} of {count} was killed by {name} (exit status {status})"
    return f"process {index} of {count} exited with status {returncode}"


def _say(line: str) -> None:
    print(f"nnjax launch: {line}", file=sys.stderr, flush=True)


def _wait(procs: list[subprocess.Popen], timeout_s: float | None) -> int:
    """Waits for all; on the first failure or the deadline, says so and stops the rest."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    # poll every process each round (`any` over a generator would stop at the first
    # running one and never notice a later one's death)
    while None in [p.poll() for p in procs]:
        failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode not in (None, 0)]
        if failed:
            running = sum(p.returncode is None for p in procs)
            for i, code in failed:
                _say(describe(i, len(procs), code))
            _say(f"stopping the other {running} running process(es)")
            return exit_status(failed[0][1])
        if deadline is not None and time.monotonic() > deadline:
            _say(f"the processes ran past the timeout of {timeout_s:g} s; stopping them")
            return 124
        time.sleep(0.05)
    failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    for i, code in failed:
        _say(describe(i, len(procs), code))
    return exit_status(failed[0][1]) if failed else 0


def _signal_group(p: subprocess.Popen, signum: int) -> None:
    """``signum`` to the process group that ``p`` leads (started in its own session)."""
    try:
        os.killpg(p.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (every member exited)


def _alive(p: subprocess.Popen) -> bool:
    """Whether the process group that ``p`` leads has a member left to stop.

    The leader is reaped first once it has exited (a zombie still counts as a member).
    """
    p.poll()
    try:
        os.killpg(p.pid, 0)
    except (ProcessLookupError, PermissionError):  # empty, or no member of ours
        return False
    return True


def _stop(procs: list[subprocess.Popen], *, leftovers: bool = True) -> None:
    """Stops the running processes' groups: SIGINT, then SIGTERM, then SIGKILL.

    SIGINT first, so a process ends as after Ctrl-C (``nnjax train`` removes what an
    unsaved run created; a script that joined with ``initialize`` ends at once, by its
    excepthook); SIGTERM to the groups left after :data:`_INTERRUPT_S`; SIGKILL to
    those left after :data:`GRACE_S`. Each wait ends as soon as every group is empty.
    With ``leftovers``, also the groups of processes that have exited (a wrapper's
    children left behind); after a success those are left alone.
    """
    # the groups to stop: a leader that has exited (reaped by poll) keeps its group id
    # while members remain, and its pid is not reused before the group is empty
    groups = [p for p in procs if leftovers or p.poll() is None]
    start = time.monotonic()
    for signum, after in (
        (signal.SIGINT, 0.0),
        (signal.SIGTERM, _INTERRUPT_S),
        (signal.SIGKILL, GRACE_S),
    ):
        while any(_alive(p) for p in groups) and time.monotonic() < start + after:
            time.sleep(0.02)
        for p in groups:
            if _alive(p):
                _signal_group(p, signum)
    for p in groups:  # SIGKILLed at the latest
        p.wait()
