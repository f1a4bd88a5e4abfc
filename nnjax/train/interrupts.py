"""Ctrl-C at a safe point: a ``SIGINT`` that arrives inside a critical section waits.

A compiled train step *donates* its input state: once dispatched, the old parameter
buffers are deleted. A ``KeyboardInterrupt`` raised after the dispatch but before the
new state is stored would leave the model pointing at deleted arrays. Likewise, an
interrupt while XLA compiles the first step can crash the process (a segfault inside
the compiler, reproducible in a plain JAX script). :func:`deferred_interrupt` holds a
``SIGINT`` until the section ends, then delivers it to the handler that was installed
before (by default: ``KeyboardInterrupt`` raised at that point).

Only the main thread receives signals in Python; elsewhere the context manager does
nothing.

Example:
  >>> with deferred_interrupt():
  ...     total = sum(range(10))
  >>> total
  45
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType


def _deliver(previous: object, signum: int, frame: FrameType | None) -> None:
    """Runs what ``previous`` (a ``signal.signal`` handler value) would have done."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    # SIG_IGN (or None: installed outside Python): the signal is ignored, as before


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Delays ``SIGINT`` (Ctrl-C) received inside the block until the block ends.

    The signal is then handled as it would have been at the moment it arrived (a
    ``KeyboardInterrupt`` under Python's default handler). If the block raises, its
    exception propagates instead (it stops the run just as the interrupt would).

    Yields:
      Nothing; use as ``with deferred_interrupt(): ...``.

    Example:
      >>> with deferred_interrupt():
      ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append((signum, frame))

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:  # the block completed: now is a safe point
        _deliver(previous, *received[0])


__all__ = ["deferred_interrupt"]
