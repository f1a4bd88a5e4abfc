"""Abstract evaluation of modules, without touching their state (private)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


def eval_module(module: nnx.Module, fn: Callable[..., Any], *args: Any) -> Any:
    """``jax.eval_shape`` of ``fn(copy_of_module, *args)``.

    The module is split and merged inside the trace, so stateful layers (batch-norm
    statistics, dropout RNG counters) of ``module`` itself are never written to.
    """
    graphdef, state = nnx.split(module)
    return jax.eval_shape(lambda s, *a: fn(nnx.merge(graphdef, s), *a), state, *args)


def output_shape(
    module: nnx.Module, input_shape: Sequence[int], dtype: jnp.dtype = jnp.float32
) -> tuple[int, ...]:
    """The shape of ``module(x)`` for ``x`` of ``input_shape``, computed abstractly."""
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    return tuple(eval_module(module, lambda m, a: m(a), x).shape)
