"""Shared check that a functional op works under jit, vmap and grad (test helper, private).

``assert_transforms(fn, *args)`` runs ``fn`` (a closure over the op's static arguments,
taking only floating arrays) in float32 and bfloat16 and checks that:

* ``jax.jit(fn)`` matches the eager result, keeps the dtype, and traces once for two
  calls with the same shapes (a trace counter);
* ``jax.vmap(fn)`` over a stacked pair of inputs equals the two jitted calls;
* ``jax.grad`` with respect to every argument is finite and has the argument's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np

TOLERANCE = {jnp.float32: 1e-5, jnp.bfloat16: 5e-2, jnp.float16: 1e-2}


def _cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


def _close(actual, expected, tol):
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(e, np.float32), rtol=tol, atol=tol
        ),
        actual,
        expected,
    )


def _total(tree) -> jax.Array:
    leaves = [jnp.sum(jnp.asarray(a, jnp.float32) * 0.5) for a in jax.tree.leaves(tree)]
    return sum(leaves)


def assert_transforms(fn: Callable, *args, dtypes=(jnp.float32, jnp.bfloat16)) -> None:
    """Checks ``fn(*args)`` under ``jit``, ``vmap`` and ``grad`` in each dtype."""
    for dtype in dtypes:
        _assert_transforms_in(fn, args, dtype)


def _assert_transforms_in(fn: Callable, args: tuple, dtype) -> None:
    tol = TOLERANCE[dtype]
    typed = _cast(args, dtype)
    expected = fn(*typed)
    jax.tree.map(lambda a: chex.assert_type(a, dtype), expected)

    traces = []
    jitted = jax.jit(lambda *a: traces.append(1) or fn(*a))
    first = jitted(*typed)
    _close(first, expected, tol)
    other = _cast(jax.tree.map(lambda a: a * 0.5, args), dtype)
    second = jitted(*other)
    assert len(traces) == 1, f"traced {len(traces)} times for two calls of one shape"

    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), typed, other)
    batched = jax.jit(jax.vmap(fn))(*stacked)
    _close(jax.tree.map(lambda a: a[0], batched), first, tol)
    _close(jax.tree.map(lambda a: a[1], batched), second, tol)

    argnums = tuple(range(len(args)))
    grads = jax.jit(jax.grad(lambda *a: _total(fn(*a)), argnums=argnums))(*typed)
    for g, a in zip(jax.tree.leaves(grads), jax.tree.leaves(typed)):
        chex.assert_type(g, dtype)
        chex.assert_shape(g, a.shape)
        assert np.all(np.isfinite(np.asarray(g, np.float32)))


def assert_member_grads(loss: Callable, reference: Callable, members, x, *, jit: Callable) -> None:
    """A sweep's vmapped members: ``jit(grad)`` of ``sum(vmap(loss))`` traces once for two
    calls and gives each member ``jax.grad(reference)``'s gradient (to 1e-4).

    ``loss(member_params, x)`` and ``reference(member_params, x)`` return scalars.
    """
    traces = []

    def total(p, x):
        traces.append(1)
        return jnp.sum(jax.vmap(lambda q: loss(q, x))(p))

    fn = jit(jax.grad(total))
    grads = fn(members, x)
    fn(members, x + 1.0)
    assert len(traces) == 1, f"traced {len(traces)} times for two calls of one shape"
    count = jax.tree.leaves(members)[0].shape[0]
    for m in range(count):
        one = jax.tree.map(lambda a, m=m: a[m], members)
        expected = jax.grad(reference)(one, x)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a[m], b, rtol=1e-4, atol=1e-4)
