"""Ctrl-C at a safe point: a ``SIGINT`` that arrives inside a critical section waits.

A compiled train step *donates* its input state: once dispatched, the old parameter
buffers are deleted. A ``KeyboardInterrupt`` raised after the dispatch but before the
new state is stored would leave the model pointing at deleted arrays. Likewise, an
interrupt while XLA compiles the first step can crash the process (a segfault inside
the compiler, reproducible in a plain JAX script). :func:`deferred_interrupt` holds a
``SIGINT`` until the section ends, then delivers it to the handler that was installed
before (by default: ``KeyboardInterrupt`` raised at that point).
:func:`held_interrupts` holds it for a whole run and hands it over at the run's safe
points.

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
import functools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")


def _deliver(previous: object, signum: int, frame: FrameType | None) -> None:
    """Runs what ``previous`` (a ``signal.signal`` handler value) would have done."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    # SIG_IGN (or None: installed outside Python): the signal is ignored, as before


class _Holder:
    """The ``SIGINT`` handler of a holding block: keeps the first signal until delivered.

    Attributes:
      previous: the handler installed before the block (what a held signal goes to).
      again_at_once: a second ``SIGINT`` while one is held is handled at once.
      held: the held ``(signum, frame)``, at most one.
    """

    def __init__(self, previous: Any, again_at_once: bool) -> None:
        self.previous = previous
        self.again_at_once = again_at_once
        self.held: list[tuple[int, FrameType | None]] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.held and self.again_at_once:  # pressed again: both handled now, as one
            self.held.clear()
            _deliver(self.previous, signum, frame)
        elif not self.held:
            self.held.append((signum, frame))

    def deliver(self) -> None:
        """Handles a held signal as ``previous`` would have; nothing if none is held."""
        if self.held:
            _deliver(self.previous, *self.held.pop())


@contextlib.contextmanager
def _holding(*, again_at_once: bool) -> Iterator[Callable[[], None]]:
    """Holds ``SIGINT`` in the block; yields ``deliver()``; handles a held one at the end.

    With ``again_at_once`` a second ``SIGINT`` while one is held is handled at once,
    and a block nested in another such block shares the outer one's holder (its
    ``deliver()``), so that a held signal reaches the caller at the inner safe points.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    current = signal.getsignal(signal.SIGINT)
    if again_at_once and isinstance(current, _Holder) and current.again_at_once:
        yield current.deliver
        return
    holder = _Holder(current, again_at_once)
    signal.signal(signal.SIGINT, holder)
    try:
        yield holder.deliver
    finally:
        signal.signal(signal.SIGINT, holder.previous)
    if holder.held:  # the block completed: its end is a safe point
        _deliver(holder.previous, *holder.held[0])


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
    with _holding(again_at_once=False):
        yield


@contextlib.contextmanager
def held_interrupts() -> Iterator[Callable[[], None]]:
    """Holds ``SIGINT`` for a whole run; the yielded ``deliver()`` handles a held one.

    A run calls ``deliver()`` at its safe points (``fit``: after every dispatch and
    every epoch), and a Ctrl-C is handled there wherever it arrived. Under Python's
    own handler a ``KeyboardInterrupt`` raised inside a ``gc`` callback (JAX runs one,
    ``_xla_gc_callback``, at every collection: jax-ml/jax#18246) is printed, ignored
    and lost. A second ``SIGINT`` while one is held is handled at once, outside
    :func:`deferred_interrupt`'s sections (a way out of a callback that never returns);
    one still held when the block ends is handled there. Nested in another (the epoch
    loop inside :func:`holding_interrupts`), it shares the outer block's holder.
    Outside the main thread it holds nothing.

    Yields:
      ``deliver()``: handles a held ``SIGINT`` as the handler installed before would
      have (by default: raises ``KeyboardInterrupt``); does nothing if none is held.

    Example:
      >>> with held_interrupts() as deliver:
      ...     deliver()  # nothing held: nothing happens
    """
    with _holding(again_at_once=True) as deliver:
        yield deliver


_P = ParamSpec("_P")


def holding_interrupts(fn: Callable[_P, T]) -> Callable[_P, T]:
    """``fn`` run inside :func:`held_interrupts`, from its first line to its last.

    ``fit`` and ``sweep`` are: a Ctrl-C during their setup (checks, data on the
    devices, a resumed checkpoint) is held, so that it cannot land in a ``gc`` callback
    and be lost, and is raised where the epoch loop starts (its
    :func:`held_interrupts`, nested, shares this one's); a second one is raised at once.

    Example:
      >>> @holding_interrupts
      ... def setup_then_train():
      ...     return signal.getsignal(signal.SIGINT) is not signal.default_int_handler
      >>> setup_then_train()
      True
    """

    @functools.wraps(fn)
    def held(*args: _P.args, **kwargs: _P.kwargs) -> T:
        with held_interrupts():
            return fn(*args, **kwargs)

    return held


__all__ = ["deferred_interrupt", "held_interrupts", "holding_interrupts"]
