"""Reads of a user's iterator by one thread at a time, across ``fit`` calls.

``fit`` reads an iterable's batches in a background thread
(:class:`nnjax.train.feeder.Prefetcher`). When a run stops (an error, a Ctrl-C) while
that thread waits inside the user's generator (a slow read), the thread is left to
finish that one read. A second ``fit`` on the same generator, as Keras users write it,
would then call it from a second thread: Python refuses ("generator already
executing"). Reading through :func:`one_at_a_time` makes the second run wait for that
read instead. The batch the stopped run's thread was reading, and those it had read
ahead (at most the prefetch depth), are not trained on: as with Keras's and PyTorch's
loaders, a stopped run drops what it had prefetched.

Example:
  >>> def numbers():
  ...     yield from range(3)
  >>> gen = numbers()
  >>> next(one_at_a_time(gen)), list(one_at_a_time(gen))
  (0, [1, 2])
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_REGISTRY = threading.Lock()


def _lock_for(iterator: Iterator) -> threading.Lock | None:
    """The one lock of ``iterator``; ``None`` for iterators without weak references.

    Those are the built-in ones (list iterators, ``itertools``), whose ``next`` holds the
    GIL throughout, so that two threads never interleave inside one.
    """
    with _REGISTRY:
        try:
            return _LOCKS.setdefault(iterator, threading.Lock())
        except TypeError:
            return None


def one_at_a_time(iterator: Iterator) -> Iterator:
    """``iterator``'s items, each ``next`` holding the iterator's lock.

    Every wrapper of the same iterator shares its lock, so a read waits for another
    thread's read in progress instead of failing.

    Args:
      iterator: any iterator (a generator, a loader's iterator).

    Returns:
      A generator of the same items.
    """
    lock = _lock_for(iterator)
    if lock is None:
        yield from iterator
        return
    while True:
        with lock:  # an earlier, stopped run's thread may still be inside next()
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


__all__ = ["one_at_a_time"]
