"""The ops under a mesh with explicit axes (``jax.set_mesh``): batch shardings (private).

Under a mesh whose axes are ``Explicit`` (JAX's default for ``jax.make_mesh`` from
jax 0.9), every array's type carries its sharding, and some operations need to be told
the sharding of their result or need operands sharded alike: a scan's carry must keep
its type from step to step, ``concatenate`` takes operands of one sharding, a reshape
that splits axes and a contraction over a sharded axis ask for the output's sharding.
The ops that do those pass the batch axis's sharding along with these helpers, and
convolutions, whose gradients JAX cannot type there, run with the axes automatic
(:func:`batch_sharded`); under any other mesh (``Auto`` axes, as ``fit``'s), or none,
the helpers change nothing.

Example:
  >>> batch_axis(jnp.ones((4, 3))) is None  # no mesh with explicit axes
  True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import PartitionSpec


def _explicit_names() -> frozenset[str]:
    """The mesh axes of type ``Explicit`` of the abstract mesh being traced under."""
    get = getattr(jax.sharding, "get_abstract_mesh", None)
    mesh = get() if get is not None else None
    if mesh is None or getattr(mesh, "empty", True):
        return frozenset()
    explicit = getattr(jax.sharding.AxisType, "Explicit", None)
    return frozenset(
        name for name, kind in zip(mesh.axis_names, mesh.axis_types) if kind == explicit
    )


def batch_axis(x: jax.Array, axis: int = 0) -> Any:
    """The mesh axis (or axes) that shards ``x``'s batch axis (``axis``) explicitly, else ``None``.

    Example:
      >>> batch_axis(jnp.ones(2)) is None
      True
    """
    explicit = _explicit_names()
    if not explicit or jax.numpy.ndim(x) <= axis:
        return None
    spec = getattr(getattr(jax.typeof(x), "sharding", None), "spec", None)
    entry = spec[axis] if spec and len(spec) > axis else None
    names = entry if isinstance(entry, tuple) else (entry,)
    return entry if entry is not None and all(n in explicit for n in names) else None


def batch_spec(axis: Any, ndim: int) -> PartitionSpec | None:
    """``P(axis, None, ...)`` of ``ndim`` entries, or ``None`` when ``axis`` is.

    Example:
      >>> batch_spec(None, 3) is None
      True
    """
    return None if axis is None else PartitionSpec(axis, *(None,) * (ndim - 1))


def like_batch(tree: Any, axis: Any) -> Any:
    """Every leaf of ``tree`` resharded so that its first axis is sharded over ``axis``.

    Leaves already sharded so are returned as they are; ``axis=None`` returns ``tree``.

    Example:
      >>> like_batch(jnp.zeros((2, 3)), None).shape
      (2, 3)
    """
    if axis is None:
        return tree

    def reshard(a: jax.Array) -> jax.Array:
        if batch_axis(a) == axis:
            return a
        return jax.sharding.reshard(a, batch_spec(axis, a.ndim))

    return jax.tree.map(reshard, tree)


def batch_sharded(fn: Callable[..., jax.Array], axis: Any, ndim: int) -> Callable[..., jax.Array]:
    """``fn`` run with the mesh's axes automatic, its ``ndim``-d result sharded over ``axis``.

    For operations whose gradients JAX cannot type under explicit axes (a convolution's
    kernel gradient contracts the sharded batch, and its transpose rule asks for an
    output sharding it is not given): ``jax.sharding.auto_axes`` leaves the sharding
    inside to XLA. ``axis=None`` (no explicit batch sharding) returns ``fn`` itself.

    Example:
      >>> batch_sharded(jnp.sin, None, 1) is jnp.sin
      True
    """
    if axis is None:
        return fn
    return jax.sharding.auto_axes(fn, out_sharding=batch_spec(axis, ndim))


def replicated(axis: Any) -> PartitionSpec | None:
    """``P()`` (replicated) where ``axis`` is a batch sharding, for a sum over the batch.

    Example:
      >>> replicated(None) is None
      True
    """
    return None if axis is None else PartitionSpec()


__all__ = ["batch_axis", "batch_sharded", "batch_spec", "like_batch", "replicated"]
