"""How an ``nnjax`` process ends after Ctrl-C or a failure (private).

Split out of :mod:`nnjax.cli`. Run as the command, Ctrl-C ends the process at once
(:func:`exit_now`). A process of a group (``nnjax launch``) that failed or was
interrupted leaves the group at once too (:func:`leave_group`): returning would run
JAX's shutdown barrier, which waits for the other processes while they wait for this
one in a collective, until JAX aborts them all.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import NoReturn

#: How long a process leaving its group waits for the computations it has dispatched.
DISPATCHED_WAIT_S = 3.0


def exit_now(status: int) -> NoReturn:
    """Flushes what can be flushed, then ends the process without interpreter shutdown.

    After Ctrl-C the interpreter's shutdown can crash (a segmentation fault, seen when
    the interrupt lands in an extension module's import or in JAX's start-up); the run
    folder is already cleaned up, so there is nothing left to finalise.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def silence_stdout() -> None:
    """Points stdout at /dev/null, so its last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. under pytest)
        pass


def in_a_group() -> bool:
    """Whether this process joined a group of several (never starting JAX to find out)."""
    jax = sys.modules.get("jax")
    return jax is not None and jax.distributed.is_initialized() and jax.process_count() > 1


def leave_group(status: int) -> NoReturn:
    """Ends this process of a group at once with ``status`` (its error already printed).

    As :func:`nnjax.distributed.initialize`'s hook does after an uncaught exception:
    the other processes fail in their next collective, and ``nnjax launch`` stops
    them. First it waits (at most :data:`DISPATCHED_WAIT_S`) for the computations this
    process has dispatched: a step dispatched before Ctrl-C still has its collectives
    to join, and before the group's first collective has connected the processes, the
    others would wait there for this one without an error (a stop that ends in
    SIGKILL, with no cleanup).
    """
    _finish_dispatched(DISPATCHED_WAIT_S)
    exit_now(status)


def _finish_dispatched(timeout_s: float) -> None:
    """Waits up to ``timeout_s`` for every live JAX array's computation to end."""
    import jax

    def wait() -> None:
        for array in jax.live_arrays():
            with contextlib.suppress(Exception):  # deleted (donated), or failed
                array.block_until_ready()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    thread.join(timeout_s)
