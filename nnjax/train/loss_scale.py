"""Dynamic loss scaling: the gradients of a float16 model kept out of underflow.

float16 has 10 mantissa bits and no number below about 6e-8 (normal ones stop at
6.1e-5), so the small gradients a float16 model's backward pass carries round to zero.
As Keras' ``LossScaleOptimizer`` and PyTorch's ``GradScaler`` do, the step multiplies
the loss by a scale ``S`` before differentiating it, and :func:`dynamic_loss_scale`
divides the gradients by ``S`` before its inner optimizer sees them. A step whose
gradients are not finite (the scaled backward pass overflowed) is skipped: no update,
the inner optimizer's state kept, ``S`` halved. After ``growth_interval`` finite steps in
a row ``S`` doubles. Powers of two, so the scaling itself rounds nothing.

``fit(precision="float16")`` and ``sweep(precision="float16")`` wrap their optimizer in
it (:func:`for_precision`); :func:`nnjax.train.make_train_step` scales the loss by
whatever :class:`LossScaleState` its optimizer state holds (:func:`value_and_grad`), so
a loop of your own gets the same by passing ``dynamic_loss_scale(tx)``. The logged loss
is the unscaled one; the scale is logged too, as ``"loss_scale"`` (:func:`logged`).

Example:
  >>> import optax
  >>> tx = dynamic_loss_scale(optax.sgd(1.0), initial_scale=8.0)
  >>> state = tx.init({"w": jnp.zeros(2)})
  >>> updates, state = tx.update({"w": jnp.array([8.0, 16.0])}, state)  # scaled by 8
  >>> updates["w"].tolist(), float(state.scale)
  ([-1.0, -2.0], 8.0)
  >>> updates, state = tx.update({"w": jnp.array([jnp.inf, 1.0])}, state)  # overflowed
  >>> updates["w"].tolist(), float(state.scale)
  ([0.0, 0.0], 4.0)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax.train import optax_checks

INITIAL_SCALE = 2.0**15
"""The first scale (Keras' ``LossScaleOptimizer``; PyTorch's ``GradScaler`` takes 2**16)."""

GROWTH_INTERVAL = 2000
"""Finite steps in a row after which the scale doubles (Keras' and PyTorch's)."""

MAX_SCALE = 2.0**24
"""The scale never grows past this: float16's smallest subnormal times it is 1."""


class LossScaleState(NamedTuple):
    """:func:`dynamic_loss_scale`'s state: the scale, its streak, the inner optimizer's state."""

    scale: jax.Array
    """The current scale ``S``, a float32 scalar (a power of two)."""
    good_steps: jax.Array
    """Finite steps since the scale last changed, an int32 scalar."""
    inner_state: Any
    """The wrapped optimizer's state."""


def dynamic_loss_scale(
    inner: optax.GradientTransformation,
    *,
    initial_scale: float = INITIAL_SCALE,
    growth_interval: int = GROWTH_INTERVAL,
) -> optax.GradientTransformationExtraArgs:
    """``inner`` on gradients of a loss scaled by ``S``: divided by ``S``, skipped if not finite.

    Args:
      inner: the optimizer the unscaled gradients go to (its extra arguments, such as
        ``value=`` for ``optax.contrib.reduce_on_plateau``, are passed on).
      initial_scale: the first ``S``; a power of two from 1 to :data:`MAX_SCALE`.
      growth_interval: finite steps in a row after which ``S`` doubles (up to
        :data:`MAX_SCALE`); a step that is not finite halves it (down to 1).

    Returns:
      An Optax transformation whose state is a :class:`LossScaleState`. Its ``update``
      takes the gradients of ``S`` times the loss (``S`` is ``state.scale``). A step
      whose gradients hold an infinity or NaN returns zero updates and keeps the inner
      state, whatever the inner optimizer would have done.

    Raises:
      ValueError: ``initial_scale`` is not a power of two in ``[1, MAX_SCALE]``, or
        ``growth_interval`` is not a positive int.

    Example:
      >>> tx = dynamic_loss_scale(optax.adam(1e-3), growth_interval=1)
      >>> state = tx.init({"w": jnp.zeros(3)})
      >>> _, state = tx.update({"w": jnp.ones(3)}, state)
      >>> float(state.scale) == 2 * INITIAL_SCALE
      True
    """
    _check(initial_scale, growth_interval)
    inner = optax.with_extra_args_support(inner)

    def init(params: Any) -> LossScaleState:
        scale = jnp.asarray(initial_scale, jnp.float32)
        return LossScaleState(scale, jnp.zeros((), jnp.int32), inner.init(params))

    def update(grads: Any, state: LossScaleState, params: Any = None, **extra: Any):
        grads = jax.tree.map(lambda g: (g / state.scale).astype(g.dtype), grads)
        finite = _all_finite(grads)
        updates, inner_state = inner.update(grads, state.inner_state, params, **extra)
        updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), updates)
        inner_state = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old), inner_state, state.inner_state
        )
        grow = finite & (state.good_steps + 1 >= growth_interval)
        scale = jnp.where(finite, state.scale, jnp.maximum(state.scale / 2, 1.0))
        scale = jnp.where(grow, jnp.minimum(scale * 2, MAX_SCALE), scale)
        good_steps = jnp.where(finite & ~grow, state.good_steps + 1, 0).astype(jnp.int32)
        return updates, LossScaleState(scale, good_steps, inner_state)

    return optax.GradientTransformationExtraArgs(init, update)


def _check(initial_scale: Any, growth_interval: Any) -> None:
    if isinstance(growth_interval, bool) or not isinstance(growth_interval, int):
        raise ValueError(f"growth_interval must be a positive int, got {growth_interval!r}")
    if growth_interval < 1:
        raise ValueError(f"growth_interval must be a positive int, got {growth_interval!r}")
    number = isinstance(initial_scale, (int, float)) and not isinstance(initial_scale, bool)
    power = number and math.isfinite(initial_scale) and math.frexp(initial_scale)[0] == 0.5
    if not (power and 1.0 <= initial_scale <= MAX_SCALE):
        raise ValueError(
            f"initial_scale must be a power of two from 1 to 2**24, got {initial_scale!r}"
        )


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def scale_of(opt_state: Any) -> jax.Array | None:
    """The scale of the first :class:`LossScaleState` in ``opt_state``, or None.

    Found anywhere in tuples and mappings of states (inside ``optax.inject_hyperparams``,
    as a sweep wraps each member's optimizer, or an ``optax.chain``).

    Example:
      >>> scale_of(optax.sgd(0.1).init({"w": jnp.ones(1)})) is None
      True
      >>> float(scale_of(dynamic_loss_scale(optax.sgd(0.1)).init({"w": jnp.ones(1)})))
      32768.0
    """
    node = optax_checks.first_node(opt_state, LossScaleState)
    return None if node is None else node.scale


def logged(opt_state: Any) -> np.ndarray | None:
    """The scale(s) a run logs as ``"loss_scale"``: :func:`scale_of` on the host, or None.

    ``fit`` logs the one scale of its optimizer state at each epoch's end, ``sweep``
    each member's (``(M,)``): a scale below :data:`INITIAL_SCALE` counts the halvings of
    the steps it skipped, one that stays at 1 says that the float16 gradients overflow
    whatever the scale.

    Example:
      >>> logged(optax.sgd(0.1).init({"w": jnp.ones(1)})) is None
      True
      >>> logged(dynamic_loss_scale(optax.sgd(0.1), initial_scale=4.0).init({"w": jnp.ones(1)}))
      array(4.)
    """
    scale = scale_of(opt_state)
    return None if scale is None else np.asarray(jax.device_get(scale), np.float64)


def value_and_grad(objective: Callable) -> Callable:
    """``fn(params, rest, batch, opt_state) -> ((loss, aux), grads)`` of ``objective``.

    ``objective(params, rest, batch) -> (loss, aux)`` as
    :func:`nnjax.train.objective.make_objective` builds it. Where ``opt_state`` holds a
    :class:`LossScaleState` (:func:`scale_of`), the gradients are those of its scale
    times the loss (for :func:`dynamic_loss_scale` to divide), and the loss returned
    is the unscaled one; otherwise :func:`jax.value_and_grad`'s.

    Example:
      >>> objective = lambda p, r, b: (jnp.sum(p["w"] * b), None)
      >>> fn = value_and_grad(objective)
      >>> state = dynamic_loss_scale(optax.sgd(0.1), initial_scale=4.0).init({"w": jnp.ones(2)})
      >>> (loss, _), grads = fn({"w": jnp.ones(2)}, None, jnp.array([1.0, 2.0]), state)
      >>> float(loss), grads["w"].tolist()
      (3.0, [4.0, 8.0])
    """
    plain = jax.value_and_grad(objective, has_aux=True)
    scaled = jax.value_and_grad(functools.partial(_scaled, objective), has_aux=True)

    def fn(params: Any, rest: Any, batch: Any, opt_state: Any):
        scale = scale_of(opt_state)
        if scale is None:
            return plain(params, rest, batch)
        (value, aux), grads = scaled(params, rest, batch, scale)
        return (value / scale.astype(value.dtype), aux), grads

    return fn


def _scaled(objective: Callable, params: Any, rest: Any, batch: Any, scale: jax.Array):
    value, aux = objective(params, rest, batch)
    return value * scale.astype(value.dtype), aux


def for_precision(tx: optax.GradientTransformation, precision: Any) -> Any:
    """``tx`` wrapped in :func:`dynamic_loss_scale` where ``precision`` computes in float16.

    Example:
      >>> type(for_precision(optax.sgd(0.1), None)).__name__
      'GradientTransformationExtraArgs'
      >>> for_precision(optax.sgd(0.1), "float16").init({"w": jnp.ones(1)}).scale.dtype
      dtype('float32')
    """
    return dynamic_loss_scale(tx) if _float16(precision) else tx


def scaled_factory(factory: Callable, precision: Any) -> Callable:
    """An Optax factory whose optimizers :func:`for_precision` wraps (a sweep's members).

    The same function where ``precision`` does not compute in float16; otherwise a new
    one with ``factory``'s signature (its hyperparameters stay injectable, and
    ``optax.inject_hyperparams`` stays outermost, where a sweep reads and sets them).

    Example:
      >>> scaled_factory(optax.sgd, None) is optax.sgd
      True
      >>> scaled_factory(optax.sgd, "float16").__name__
      'sgd'
    """
    if not _float16(precision):
        return factory

    @functools.wraps(factory)  # its signature: the hyperparameters it takes
    def build(*args: Any, **kwargs: Any) -> optax.GradientTransformation:
        return dynamic_loss_scale(factory(*args, **kwargs))

    return build


def _float16(precision: Any) -> bool:
    return precision is not None and jnp.dtype(precision) == jnp.float16


__all__ = [
    "GROWTH_INTERVAL",
    "INITIAL_SCALE",
    "MAX_SCALE",
    "LossScaleState",
    "dynamic_loss_scale",
    "for_precision",
    "logged",
    "scale_of",
    "scaled_factory",
    "value_and_grad",
]
