"""A bound on how far the host runs ahead of the devices: a few dispatches, and bytes.

JAX dispatches asynchronously: a loop that calls a jitted step and keeps its outputs
queues every call at once. Each PJRT device admits 32 executions in flight, and on the
CPU backend of jax 0.10 a program with a collective (a data-parallel step's gradient
all-reduce, an evaluation's summed statistics) over two or more local devices deadlocks
once that queue fills, and XLA aborts the process after 40 s ("Termination timeout for
all reduce"). Measured on 2 and 4 CPU devices: the host waiting for the call 31 back
never hung, 33 back always did (jax 0.8.1 did not hang). A 4-device CPU ``fit`` with one
update per dispatch reached it within an epoch.

``fit``, ``evaluate``, ``predict`` and ``sweep`` therefore wait, after each dispatch,
for the output of the dispatch :data:`DEPTH` back. The devices still always have
``DEPTH`` dispatches queued, so the host never starves them; the wait only stops the
host from queueing without limit (and holding every queued batch in memory).

Batches stacked on the host (iterables, memmaps, ``evaluate``'s blocks) are also bounded
in bytes: a default ``K`` batches per dispatch is cut to what fits in
:data:`DISPATCH_BYTES` (:func:`steps_within`), and fewer dispatches are queued where
they are large (:func:`depth_for`), so that at most about :data:`QUEUE_BYTES` of input
wait on the devices and in the feeder's queue. Eight stacked batches of 256 ImageNet
images (224 x 224 x 3, float32) are 1.2 GB; queued 8 deep, 11 GB.

Example:
  >>> import jax.numpy as jnp
  >>> outs = collect(jnp.full((2,), i) for i in range(20))
  >>> len(outs), int(outs[-1][0])
  (20, 19)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import jax

T = TypeVar("T")

DEPTH = 8
"""Dispatches queued beyond the one the host waits for (well below PJRT's 32)."""

DISPATCH_BYTES = 256 << 20
"""Input bytes of one dispatch of host-stacked batches, where nnjax picks ``K``."""

QUEUE_BYTES = 1 << 30
"""Input bytes of host-stacked dispatches that may wait at once (queued and prefetched)."""

PREFETCHED = 3
"""Dispatches the feeder holds beside the queue: two in its queue, one being stacked."""


def nbytes(tree: Any) -> int:
    """Bytes of a pytree's array leaves (``.nbytes``; other leaves count 0).

    Example:
      >>> import numpy as np
      >>> nbytes({"x": np.zeros((4, 2), np.float32), "n": 3})
      32
    """
    return sum(int(getattr(leaf, "nbytes", 0)) for leaf in jax.tree.leaves(tree))


def steps_within(k: int, batch_bytes: int, budget: int | None = None) -> int:
    """The batches per dispatch, at most ``k``, whose stack fits in ``budget`` bytes.

    Args:
      k: the batches per dispatch wanted (a default, such as ``fit``'s 8).
      batch_bytes: bytes of one batch's inputs, labels and weights.
      budget: default :data:`DISPATCH_BYTES`.

    Returns:
      ``min(k, budget // batch_bytes)``, at least 1.

    Example:
      >>> steps_within(8, 1 << 20), steps_within(8, 100 << 20), steps_within(8, 1 << 40)
      (8, 2, 1)
    """
    budget = DISPATCH_BYTES if budget is None else budget
    return max(1, min(k, budget // max(batch_bytes, 1)))


def depth_for(dispatch_bytes: int, budget: int | None = None) -> int:
    """The dispatches that may stay queued (:func:`throttle`'s ``depth``) for their size.

    Args:
      dispatch_bytes: bytes of one dispatch's host-stacked input (0 where the data
        stays on the devices and a dispatch carries only indices).
      budget: default :data:`QUEUE_BYTES`, which also holds the feeder's
        :data:`PREFETCHED` dispatches and the one waited for.

    Returns:
      :data:`DEPTH`, or fewer (at least 1) for large dispatches.

    Example:
      >>> depth_for(0), depth_for(12 << 20), depth_for(154 << 20)
      (8, 8, 2)
    """
    budget = QUEUE_BYTES if budget is None else budget
    if dispatch_bytes <= 0:
        return DEPTH
    return max(1, min(DEPTH, budget // dispatch_bytes - PREFETCHED - 1))


def throttle(outputs: Sequence[Any], depth: int = DEPTH) -> None:
    """Blocks until the output ``depth`` dispatches before the newest is ready.

    Args:
      outputs: every dispatch's outputs so far, oldest first (pytrees of arrays that
        the later dispatches do not donate; NumPy leaves are ignored).
      depth: how many newer dispatches may stay queued.

    Example:
      >>> import jax.numpy as jnp
      >>> outs = [jnp.zeros(()) for _ in range(3)]
      >>> throttle(outs, depth=1)  # waits for outs[1]
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth!r}")
    if len(outputs) > depth:
        jax.block_until_ready(outputs[-1 - depth])


def collect(outputs: Iterable[T], depth: int = DEPTH) -> list[T]:
    """The outputs of a lazy sequence of dispatches, never more than ``depth`` queued.

    Args:
      outputs: an iterable that dispatches one program per item (a generator over
        batches), yielding each dispatch's outputs.
      depth: how many dispatches may stay queued behind the one waited for.

    Returns:
      The outputs, in order (still on the devices).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> double = jax.jit(lambda x: 2 * x)
      >>> [int(y) for y in collect(double(jnp.asarray(i)) for i in range(3))]
      [0, 2, 4]
    """
    done: list[T] = []
    for out in outputs:
        done.append(out)
        throttle(done, depth)
    return done


__all__ = [
    "DEPTH",
    "DISPATCH_BYTES",
    "PREFETCHED",
    "QUEUE_BYTES",
    "collect",
    "depth_for",
    "nbytes",
    "steps_within",
    "throttle",
]
