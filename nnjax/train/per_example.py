"""Per-example gradients (``jax.vmap`` of ``jax.grad``) and per-example clipping.

Each example is run through the model as a batch of one, so the gradient of example
``b`` is exactly ``jax.grad`` of the loss on ``(x[b:b+1], y[b:b+1])``; their mean over
the batch is the gradient of the mean loss. With :func:`clip_per_example` this is the
core of DP-SGD: clip each example's gradient to a norm bound, then average.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import losses
from nnjax.train import step as step_lib
from nnjax.train.regularization import check_factor

PyTree = Any
ApplyFn = Callable[[PyTree, Any], jax.Array]


def per_example_grads(
    model_or_params: nnx.Module | PyTree,
    loss: str | losses.Loss,
    x: Any,
    y: jax.typing.ArrayLike,
    *,
    apply_fn: ApplyFn | None = None,
    training: bool = False,
) -> PyTree:
    """The gradient of the loss of every example of a batch, w.r.t. the parameters.

    Args:
      model_or_params: a Flax NNX model (gradients w.r.t. its ``nnx.Param`` s), or a
        parameter pytree, in which case ``apply_fn`` is required.
      loss: a name from :mod:`nnjax.losses` or a callable ``loss(predictions, y)``
        returning the mean loss of a batch.
      x: ``(B, ...)`` inputs, in the dtype the model takes (floating for dense
        layers, integer token ids for an embedding); or any pytree of ``(B, ...)``
        arrays, handed to a model as ``fit`` and ``predict`` do (a tuple as positional
        inputs, a dict as keyword inputs), and to ``apply_fn`` whole.
      y: ``(B, ...)`` targets, as ``loss`` takes them (e.g. ``(B,)`` integer class
        labels for ``"cross_entropy"``, ``(B, outputs)`` floats for ``"mse"``).
      apply_fn: ``apply_fn(params, x) -> predictions``, for (and only for) the
        parameter-pytree form (e.g. ``F.dense``).
      training: for a model, whether to run it in training mode (dropout on: every
        example then draws the same dropout key); inference mode by default.

    Returns:
      A pytree like the parameters (an ``nnx.State`` for a model): each leaf is
      ``(B, *param.shape)`` in its parameter's dtype (float32 for float32 parameters),
      and leaf ``[b]`` is the gradient of example ``b``'s loss.

    Raises:
      ValueError: if the arrays of ``x`` and ``y`` have different batch sizes, or
        ``apply_fn`` is missing for a parameter pytree.
      TypeError: ``apply_fn`` given with a model (which is called itself).

    Example:
      >>> import nnjax.functional as F
      >>> params = F.dense_init(jax.random.key(0), 3, 1)
      >>> g = per_example_grads(params, "mse", jnp.ones((5, 3)), jnp.zeros((5, 1)),
      ...                       apply_fn=F.dense)
      >>> g["kernel"].shape, g["kernel"].dtype
      ((5, 3, 1), dtype('float32'))
      >>> g["bias"].shape
      (5, 1)
    """
    x, y = jax.tree.map(jnp.asarray, x), jnp.asarray(y)
    shapes = [a.shape for a in jax.tree.leaves((x, y))]
    if not jax.tree.leaves(x) or len({s[:1] for s in shapes}) > 1 or () in shapes:
        shown = jax.tree.map(jnp.shape, x)
        raise ValueError(
            f"per_example_grads: `x` {shown} and `y` {y.shape} must share a leading batch axis"
        )
    loss = losses.get(loss)
    if isinstance(model_or_params, nnx.Module):
        if apply_fn is not None:
            raise TypeError(
                f"per_example_grads: `apply_fn` is only for a parameter pytree; a model is "
                f"called itself (got a {type(model_or_params).__name__} and {apply_fn!r})"
            )
        graphdef, params, rest = step_lib.split_model(model_or_params, training=training)
        return _model_grads(graphdef, loss, params, rest, x, y)
    if apply_fn is None:
        raise ValueError(
            "per_example_grads: `apply_fn(params, x)` is required when passing a "
            "parameter pytree instead of an nnx.Module"
        )
    return _params_grads(apply_fn, loss, model_or_params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _model_grads(graphdef, loss, params, rest, x, y):
    loss_fn = step_lib.make_loss_fn(graphdef, loss)
    one = lambda p, xi, yi: loss_fn(p, rest, _one_row(xi), yi[None])[0]
    return jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _params_grads(apply_fn, loss, params, x, y):
    one = lambda p, xi, yi: loss(apply_fn(p, _one_row(xi)), yi[None])
    return jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(params, x, y)


def _one_row(x: PyTree) -> PyTree:
    """Example ``x`` (every array's batch axis dropped by ``jax.vmap``) as a batch of one."""
    return jax.tree.map(lambda a: a[None], x)


def per_example_norms(grads: PyTree) -> jax.Array:
    """The global L2 norm of each example's gradient: ``(B,)`` float32.

    Args:
      grads: per-example gradients, every leaf with a leading axis ``B``.

    Example:
      >>> per_example_norms({"w": jnp.array([[3.0, 4.0], [0.0, 1.0]])})
      Array([5., 1.], dtype=float32)
    """
    squares = [
        jnp.sum(jnp.square(g.astype(jnp.float32)), axis=tuple(range(1, g.ndim)))
        for g in jax.tree.leaves(grads)
    ]
    return jnp.sqrt(sum(squares))


def clip_per_example(grads: PyTree, max_norm: float) -> PyTree:
    """Scales each example's gradient down to global norm ``<= max_norm`` (DP-SGD).

    Examples whose gradient norm is already at most ``max_norm`` are left unchanged;
    the others are scaled by ``max_norm / norm``. Average the result over the batch
    axis (``jax.tree.map(lambda g: g.mean(0), clipped)``) for the clipped gradient.

    Args:
      grads: per-example gradients (leading axis ``B``), e.g. from
        :func:`per_example_grads`.
      max_norm: the bound (finite, > 0).

    Returns:
      A pytree like ``grads``, same dtypes.

    Raises:
      TypeError: ``max_norm`` is not a real number.
      ValueError: ``max_norm`` is not finite and > 0.

    Example:
      >>> clip_per_example({"w": jnp.array([[3.0, 4.0], [0.0, 1.0]])}, 2.0)["w"]
      Array([[1.2, 1.6],
             [0. , 1. ]], dtype=float32)
    """
    check_factor("clip_per_example", "max_norm", max_norm, positive=True)
    norms = per_example_norms(grads)
    scale = jnp.where(norms > max_norm, max_norm / jnp.maximum(norms, 1e-30), 1.0)

    def apply(g: jax.Array) -> jax.Array:
        return g * scale.reshape((-1,) + (1,) * (g.ndim - 1)).astype(g.dtype)

    return jax.tree.map(apply, grads)


def batch_grad(grads: PyTree) -> PyTree:
    """The mean of per-example gradients over the batch axis (an Optax-ready gradient).

    Args:
      grads: per-example gradients, every leaf ``(B, ...)`` with the same leading
        batch axis ``B``, e.g. from :func:`per_example_grads` or
        :func:`clip_per_example`.

    Returns:
      A pytree like ``grads`` whose leaves drop the batch axis (``(B, *shape)`` ->
      ``shape``), each the mean of its ``B`` rows, in the leaf's dtype: a gradient for
      ``optimizer.update``.

    Example:
      >>> batch_grad({"w": jnp.array([[1.0], [3.0]])})
      {'w': Array([2.], dtype=float32)}
    """
    return jax.tree.map(lambda g: jnp.mean(g, axis=0), grads)
