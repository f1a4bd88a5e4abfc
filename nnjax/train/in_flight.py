"""A bound on how far the host runs ahead of the devices: at most a few dispatches.

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


__all__ = ["DEPTH", "collect", "throttle"]
