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
from collections.abc import Iterator
from typing import Any

_READERS: dict[int, list[Any]] = {}
"""``id(iterator) -> [iterator, lock, wrappers]`` while a wrapper of it is open (the
entry holds the iterator, so that its id is not reused meanwhile)."""
_REGISTRY = threading.RLock()  # re-entered when a collected wrapper closes inside _open


def _open(iterator: Iterator) -> list[Any]:
    with _REGISTRY:
        entry = _READERS.setdefault(id(iterator), [iterator, threading.Lock(), 0])
        entry[2] += 1
        return entry


def _close(iterator: Iterator, entry: list[Any]) -> None:
    with _REGISTRY:
        entry[2] -= 1
        if entry[2] == 0:
            del _READERS[id(iterator)]


def one_at_a_time(iterator: Iterator) -> Iterator:
    """``iterator``'s items, each ``next`` holding the iterator's one lock.

    Every wrapper of the same iterator (a generator, ``map`` over one, a loader's
    iterator) shares its lock while any is open, so a read waits for another thread's
    read in progress instead of failing.

    Args:
      iterator: any iterator.

    Returns:
      A generator of the same items.
    """
    entry = _open(iterator)
    try:
        while True:
            with entry[1]:  # an earlier, stopped run's thread may still be inside next()
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item
    finally:  # the wrapper ends, or is closed or collected
        _close(iterator, entry)


__all__ = ["one_at_a_time"]
