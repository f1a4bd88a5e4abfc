"""Shared assertions for the nnjax.nn tests (private)."""

from __future__ import annotations

import chex
import jax
import numpy as np
from flax import nnx


def param_dict(module: nnx.Module) -> dict:
    """``nnx.state(module, nnx.Param)`` as a pure nested dict of arrays."""
    return nnx.to_pure_dict(nnx.state(module, nnx.Param))


def assert_params_match(module: nnx.Module, expected: dict) -> None:
    """The module's params have exactly the tree structure, shapes and values of ``expected``."""
    actual = param_dict(module)
    assert jax.tree.structure(actual) == jax.tree.structure(expected), (actual, expected)
    chex.assert_trees_all_equal_shapes_and_dtypes(actual, expected)
    chex.assert_trees_all_close(actual, expected)


def assert_jit_traces_once(model: nnx.Module, *args) -> None:
    """Calling ``model`` via nnx.split + jax.jit + nnx.merge, and under nnx.jit, traces once."""
    graphdef, state = nnx.split(model)
    pure_traces = []

    @jax.jit
    def pure(state, *args):
        pure_traces.append(1)
        m = nnx.merge(graphdef, state)
        y = m(*args)
        return y, nnx.state(m)

    y1, state = pure(state, *args)
    y2, state = pure(state, *args)
    assert len(pure_traces) == 1
    traces = []

    @nnx.jit
    def stateful(m, *args):
        traces.append(1)
        return m(*args)

    z1 = stateful(model, *args)
    z2 = stateful(model, *args)
    assert len(traces) == 1
    for y in (y1, y2, z1, z2):
        chex.assert_trees_all_equal_shapes(y, y1)


def assert_same_model(a: nnx.Module, b: nnx.Module) -> None:
    """Two models have identical state (every variable, including RNG and statistics)."""
    sa, sb = nnx.to_pure_dict(nnx.state(a)), nnx.to_pure_dict(nnx.state(b))
    sa, sb = (jax.tree.map(_plain, s) for s in (sa, sb))
    assert jax.tree.structure(sa) == jax.tree.structure(sb)
    jax.tree.map(np.testing.assert_array_equal, sa, sb)


def _plain(x):
    return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
