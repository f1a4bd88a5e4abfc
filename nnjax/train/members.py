"""How a sweep computes its stacked members: vmapped together, or one at a time.

A sweep's program steps ``M`` stacked members: all at once (``jax.vmap``, batched
matrix products), one after another in a device loop (``lax.map``, each member's step
as ``fit``'s), or in vmapped blocks (:func:`over_members`). ``members_per_step="auto"``
picks by the backend, the members' size and their layers (:func:`auto_per_step`; for
validation and predictions, :func:`auto_eval_per_step`), as measured on XLA:CPU.

Example:
  >>> import jax.numpy as jnp
  >>> over_members(lambda a: a + 1, (jnp.zeros(3),), None).tolist()
  [1.0, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from nnjax.train.dispatch_choices import has_layer_kind


def over_members(fn: Callable, xs: tuple, per_step: int | None) -> Any:
    """``fn(*member)`` for every member of the stacked ``xs``: vmapped ``per_step`` at a time.

    ``None`` (or ``per_step >= M``): one ``jax.vmap``; ``1`` (or ``M == 1``): a
    ``lax.map`` loop over members, each unbatched; else ``lax.map`` over vmapped blocks.

    Example:
      >>> import jax.numpy as jnp
      >>> xs = (jnp.arange(4.0),)
      >>> double = lambda a: a * 2
      >>> over_members(double, xs, 1).tolist(), over_members(double, xs, 3).tolist()
      ([0.0, 2.0, 4.0, 6.0], [0.0, 2.0, 4.0, 6.0])
    """
    m = jax.tree.leaves(xs)[0].shape[0]
    if m > 1 and (per_step is None or per_step >= m):
        return jax.vmap(fn)(*xs)
    if m == 1 or per_step == 1:
        return jax.lax.map(lambda member: fn(*member), xs)
    return jax.lax.map(lambda member: fn(*member), xs, batch_size=per_step)


CPU_VMAP_MAX_PARAMS = 100_000
"""On CPU, a sweep's members with at most this many parameters are vmapped together.

Larger ones run one at a time in the program's device loop. Measured
(``benchmarks/bench_sweep.py``, 2 busy cores, Adam, batch 32): the digits MLP
64-64-10 (4.8k parameters) vmapped ran 2x (M=4) to 10x (M=64) faster than a loop over
members, while the Fashion-MNIST MLP 784-500-300-100-10 (567k) vmapped ran 2.1x slower
than the loop at M=4 (batched matrix products are slow on XLA:CPU for large layers).
Models with convolutional or recurrent layers: :data:`CPU_VMAP_MAX_PARAMS_CONV_RNN`.
"""

CPU_VMAP_MAX_PARAMS_CONV_RNN = 10_000
""":data:`CPU_VMAP_MAX_PARAMS` for models with convolutional or recurrent layers.

Vmapped, their convolutions become grouped ones and their scans carry batched
matrix products. One member at a time (compiled as ``fit``'s step) against all vmapped
(plain ``jit``), whole ``sweep`` calls, batch 32, 2-core Xeon, paired medians
(``benchmarks/README.md``, "Session 23"): LSTM classifier 16 -> 16 (2.1k parameters)
1.07 at M=16, 16 -> 28 (5.3k) 0.96, 16 -> 48 (13k) 0.73 at M=16 and 0.72 at M=64,
16 -> 128 (75k) 0.73 at M=4 and 0.83 at M=16; CNN 8x8, conv 4-8, dense 16 (1k) 1.02,
28x28, conv 8-16, dense 32 (27k) 0.93 at M=4 and 0.74 at M=16.
"""

#: Module class names whose models run sweep members one at a time above the lower limit.
_LOOPED_MEMBER_KINDS = ("Conv", "LSTM", "GRU", "RNN", "Recurrent")


def auto_per_step(params: Any, platform: str, graphdef: nnx.GraphDef | None = None) -> int | None:
    """``members_per_step="auto"``: all vmapped (None) off CPU or for small members, else 1.

    Small: at most :data:`CPU_VMAP_MAX_PARAMS` parameters a member, or
    :data:`CPU_VMAP_MAX_PARAMS_CONV_RNN` for a ``graphdef`` with convolutional or
    recurrent layers.

    Example:
      >>> big = {"w": np.zeros((4, 200_000))}  # 4 members of 200k parameters
      >>> small = {"w": np.zeros((4, 9))}
      >>> auto_per_step(big, "cpu"), auto_per_step(big, "gpu"), auto_per_step(small, "cpu")
      (1, None, None)
    """
    if platform != "cpu":
        return None
    per_member = sum(int(np.prod(a.shape[1:])) for a in jax.tree.leaves(params))
    layered = graphdef is not None and has_layer_kind(graphdef, _LOOPED_MEMBER_KINDS)
    limit = CPU_VMAP_MAX_PARAMS_CONV_RNN if layered else CPU_VMAP_MAX_PARAMS
    return None if per_member <= limit else 1


def auto_eval_per_step(platform: str, graphdef: nnx.GraphDef) -> int | None:
    """A sweep's validation with ``members_per_step="auto"``: ``1`` on CPU for conv models.

    Vmapped, the members' convolutions become grouped ones, which XLA:CPU runs slowly
    forward too: the validation step of 4 CNN members (conv 32-64, dense 128; 2-core
    Xeon) took 6.8x (batch 128) and 1.8x (batch 32) the time of a loop over members.
    An LSTM's was level (0.97 looped / vmapped), a 784-500-300-100-10 MLP's vmapped
    faster (1.16), so those stay vmapped (``None``), as everything off the CPU.

    Example:
      >>> from nnjax.nn import CNN, MLP
      >>> cnn = nnx.graphdef(CNN((8, 8, 1), 2, conv_features=(4,), rngs=nnx.Rngs(0)))
      >>> mlp = nnx.graphdef(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> auto_eval_per_step("cpu", cnn), auto_eval_per_step("cpu", mlp)
      (1, None)
    """
    return 1 if platform == "cpu" and has_layer_kind(graphdef, ("Conv",)) else None


__all__ = [
    "CPU_VMAP_MAX_PARAMS",
    "CPU_VMAP_MAX_PARAMS_CONV_RNN",
    "auto_eval_per_step",
    "auto_per_step",
    "over_members",
]
