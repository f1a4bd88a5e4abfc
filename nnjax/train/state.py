"""The training state: parameters, optimizer state and the rest of the model state."""

from __future__ import annotations

from typing import Any, NamedTuple


class TrainState(NamedTuple):
    """What a training step updates: ``params``, optimizer ``opt_state``, other model ``rest``.

    A pytree (a named tuple), so it can be jitted, donated, sharded and checkpointed.

    Attributes:
      params: the trainable parameters, the ``nnx.Param`` state of the model as a pytree.
      opt_state: the Optax optimizer state of ``params`` (``tx.init(params)``).
      rest: every other model state (batch-norm statistics, PRNG stream counts).

    Example:
      >>> TrainState({"w": 1.0}, (), {})._fields
      ('params', 'opt_state', 'rest')
    """

    params: Any
    opt_state: Any
    rest: Any


__all__ = ["TrainState"]
