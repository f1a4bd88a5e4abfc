"""The objective of a step: the loss of a whole masked batch, and the pure model call.

:func:`make_objective` merges the model from a ``graphdef`` and pytrees of state and
returns the loss of a :class:`~nnjax.train.data.Batch`; :mod:`nnjax.train.step`
differentiates it. Padded rows (``mask`` 0: the epoch's last batch is filled up with
copies of real rows) never count:

* a loss of :mod:`nnjax.losses` (any callable taking ``reduction="none"``) is
  ``sum(weight * per_example) / sum(mask)``;
* a batch-level ``loss(predictions, y)`` (no ``reduction``: a batch variance, a
  contrastive loss) that takes a ``mask`` keyword (``mask=None`` by default: ``fit``
  first checks it without one) is called with ``mask=batch.mask``; one that does not
  is called on the whole padded batch (give it ``mask``);
* ``loss_fn(model, batch)`` gets the whole padded batch: weight per-example terms by
  ``batch.weight`` (0 on padding) and compute batch statistics over the real rows,
  e.g. with :func:`masked_mean`.

Example:
  >>> import jax.numpy as jnp
  >>> float(masked_mean(jnp.array([1.0, 3.0, 100.0]), jnp.array([1.0, 1.0, 0.0])))
  2.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nnjax import _checks, losses, metrics
from nnjax._loss_checks import per_example_mean
from nnjax._metrics_functions import per_element
from nnjax.functional import _bfloat16_dot, batch_mask
from nnjax.train import loss_weights
from nnjax.train._canonical import canonical_function
from nnjax.train.data import Batch
from nnjax.train.loss_output import LOSS_SCALAR, call_loss_fn, scalar, scalar_logs
from nnjax.train.model_call import call_model
from nnjax.train.precision import (
    cast_floating,
    compute_dtype,
    rounds_matmul_operands,
    upcast_low_precision,
)

PyTree = Any


def masked_mean(values: jax.Array, mask: jax.Array, axis: int = 0) -> jax.Array:
    """The mean of ``values`` over the rows where ``mask`` is 1 (padding left out).

    ``values`` has ``B`` rows along ``axis``; ``mask (B,)``. Use it in a batch-level
    ``loss_fn`` (``batch.mask``), e.g. a batch variance
    ``masked_mean((z - masked_mean(z, m)) ** 2, m)``.

    Args:
      values: an array with ``B`` rows along ``axis``, floating.
      mask: ``(B,)`` 1 for real rows, 0 for padding (float or bool).
      axis: the batch axis of ``values``.

    Returns:
      ``values`` without ``axis``, in the dtype of ``values`` (zeros when the mask is
      all 0).

    Example:
      >>> float(masked_mean(jnp.array([[1.0], [3.0], [9.0]]), jnp.array([1.0, 1.0, 0.0]))[0])
      2.0
    """
    shape = [1] * jnp.ndim(values)
    shape[axis] = -1
    m = jnp.reshape(mask, shape).astype(jnp.result_type(values))
    return jnp.sum(values * m, axis=axis) / jnp.maximum(jnp.sum(mask), 1.0)


def _like(new: PyTree, old: PyTree) -> PyTree:
    def like(a, b):
        return a.astype(b.dtype) if hasattr(b, "dtype") and a.dtype != b.dtype else a

    return jax.tree.map(like, new, old)


def as_batch(x: Any, y: Any = None, weight: Any = None, mask: Any = None) -> Batch:
    """A :class:`~nnjax.train.data.Batch` from a ``Batch`` or ``x, y`` (weights 1).

    Example:
      >>> as_batch(jnp.ones((2, 3)), jnp.zeros(2)).mask.shape
      (2,)
    """
    if isinstance(x, Batch):
        return x
    n = jax.tree.leaves(x)[0].shape[0]
    ones = jnp.ones((n,), jnp.float32)
    return Batch(x, y, ones if weight is None else weight, ones if mask is None else mask)


def canonical_loss(loss: Any) -> Any:
    """``loss`` as ``fit`` keeps it: checked, and a dict (tuple) of losses resolved.

    A dict or tuple of losses per output becomes its hashable
    :class:`~nnjax.losses.OutputLosses` (so equal specifications share compiled steps);
    a name is returned as given, once :func:`nnjax.losses.get` knows it, and a function
    as the first equal one seen (:func:`~nnjax.train._canonical.canonical_function`: a
    lambda defined again shares the compiled step).

    Raises:
      ValueError, TypeError: as :func:`nnjax.losses.get` (an unknown name...).

    Example:
      >>> canonical_loss("mse"), canonical_loss({"y": "mse"}).keys
      ('mse', ('y',))
    """
    resolved = losses.get(loss)
    return resolved if isinstance(resolved, losses.OutputLosses) else canonical_function(loss)


def canonical_specs(specs: tuple) -> tuple:
    """Metric specs with each function of your own as the first equal one seen.

    Example:
      >>> make = lambda: (lambda p, y: (p - y).mean())
      >>> canonical_specs(("mae", make()))[1] is canonical_specs((make(),))[0]
      True
    """
    return tuple(canonical_function(spec) for spec in specs)


def batch_loss(
    loss: str | losses.Loss, *, normalize: bool = True
) -> Callable[[PyTree, Batch], jax.Array]:
    """``value(predictions, batch)``: the loss of a whole masked batch.

    A loss that takes ``reduction="none"`` (every loss of :mod:`nnjax.losses`) is
    ``sum(weight * per_example) / sum(mask)``: padded rows never count and sample or
    class weights scale their examples. Any other callable is a batch-level loss,
    called on the whole batch, with ``mask=batch.mask`` when it takes a ``mask`` keyword
    (else padded rows, copies of real ones, are part of its batch).

    With ``normalize=False`` a per-example loss is ``sum(weight * per_example)`` alone:
    divide it (and its gradient) by :func:`loss_normalizer`'s ``max(sum(mask), 1)``
    afterwards. ``fit``'s step does, so that over a batch split between devices nothing
    is summed across them before the backward pass (the normalizer's sum then travels
    with the gradients' all-reduce at the end of the step; see ``make_train_step``).

    Args:
      loss: a loss name or function.
      normalize: divide a per-example loss by ``max(sum(mask), 1)`` (see above).

    Returns:
      ``value(predictions, batch)``, a scalar in the dtype of the loss's values.

    Example:
      >>> value = batch_loss("mse")
      >>> b = as_batch(jnp.zeros((2, 1)), jnp.ones((2, 1)), mask=jnp.array([1.0, 0.0]))
      >>> float(value(jnp.zeros((2, 1)), b._replace(weight=b.mask)))
      1.0
    """
    fn = losses.get(loss)
    rows, elements = metrics.per_example(fn), per_element(fn)
    takes_mask = rows is None and _checks.takes_keyword(fn, "mask")
    align = fn in losses.TARGETS_LIKE_PREDICTIONS

    def value(predictions: PyTree, batch: Batch) -> jax.Array:
        y = losses.align_targets(predictions, batch.y) if align else batch.y
        if rows is None or elements is None:
            extra = {"mask": batch.mask} if takes_mask else {}
            return fn(predictions, y, **extra)
        if loss_weights.per_position(batch.weight):
            total = jnp.sum(per_example_mean(_weighted(elements(predictions, y), batch.weight)))
        else:
            total = jnp.sum(_weighted(rows(predictions, y), batch.weight))
        return total / _normalizer(batch) if normalize else total

    return value


def _weighted(values: jax.Array, weight: jax.Array) -> jax.Array:
    """``values * weight``: per example ``(B,)`` or per position (``weight (B, T, ...)``)."""
    if loss_weights.per_position(weight):
        weight = loss_weights.over_values(weight, values)
    # float64 weights (x64) leave a float32 loss float32
    return values * weight.astype(jnp.promote_types(values.dtype, jnp.float32))


def _normalizer(batch: Batch) -> jax.Array:
    return jnp.maximum(jnp.sum(batch.mask), 1.0)  # exact: a count, in the mask's float dtype


def loss_normalizer(loss: str | losses.Loss | None) -> Callable[[Batch], jax.Array] | None:
    """What :func:`batch_loss` divides a per-example loss by: ``batch -> max(sum(mask), 1)``.

    ``None`` for a batch-level loss (and for ``None``: a ``loss_fn``), which normalizes
    itself.

    Args:
      loss: a loss name or function, or ``None``.

    Returns:
      ``normalizer(batch)``, a scalar in the mask's float dtype (float32 in ``fit``; a
      count, exact up to 2**24, so dividing a float64 loss by it is exact too); or
      ``None`` as above.

    Example:
      >>> b = as_batch(jnp.zeros((3, 1)), jnp.ones((3, 1)), mask=jnp.array([1.0, 1.0, 0.0]))
      >>> float(loss_normalizer("mse")(b)), loss_normalizer(lambda p, y: 0.0) is None
      (2.0, True)
    """
    if loss is None or metrics.per_example(losses.get(loss)) is None:
        return None
    return _normalizer


def make_objective(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None = None,
    *,
    loss_fn: Callable | None = None,
    precision: Any = None,
    remat: bool = False,
    normalize: bool = True,
) -> Callable:
    """``objective(params, rest, batch) -> (loss, (logs, predictions, new_rest))``.

    The model is merged from copies of the inputs (train-mode ``graphdef``), so the
    function is pure; its non-parameter state after the call is ``new_rest``. Either
    ``loss(predictions, y)`` on ``call_model(model, batch.x)`` (see :func:`batch_loss`),
    or ``loss_fn(model, batch) -> loss | (loss, logs)`` (``predictions`` is then None).
    The model (or ``loss_fn``) runs inside :func:`nnjax.functional.batch_mask` of the
    batch's mask, so :class:`nnjax.nn.BatchNorm` leaves padded rows out of its batch
    statistics. ``precision="bfloat16"`` runs the model on bfloat16 copies of the parameters and
    floating inputs on GPUs and TPUs; gradients, the loss and the state stay float32.
    The loss is float32, or the loss's own dtype where that is wider (a float64 model
    under ``jax_enable_x64`` has a float64 loss; :func:`~nnjax.train.loss_output.scalar`).
    On a CPU with native bfloat16 the model stays float32 and its dense layers' matmuls
    round their operands to bfloat16 (:func:`rounds_matmul_operands`; with AMX also
    the convolutions where faster, :mod:`nnjax.functional._conv_bfloat16`); on a CPU
    without, it computes in float32 and warns (:func:`compute_dtype`). ``remat``
    recomputes the forward pass in the backward pass (:func:`jax.checkpoint`).
    ``normalize=False`` leaves a per-example ``loss`` unnormalized (see :func:`batch_loss`).

    Args:
      graphdef: the model's train-mode graphdef.
      loss: a loss name or function (:func:`batch_loss`); ``None`` with ``loss_fn``.
      loss_fn: ``loss_fn(model, batch) -> loss | (loss, logs)`` in place of ``loss``.
      precision: ``None`` (float32) or ``"bfloat16"``, as above.
      remat: recompute the forward pass in the backward pass.
      normalize: divide a per-example loss by the batch's real rows (see above).

    Returns:
      ``objective(params, rest, batch)``: a scalar loss (float32, or float64 for a
      float64 loss) and
      ``(logs, predictions, new_rest)``; ``logs`` a dict of scalars (``loss_fn``'s).

    Raises:
      ValueError, TypeError: when traced, a loss that is not a scalar or a ``loss_fn``
        result that is not ``loss`` or ``(loss, logs)`` (:mod:`nnjax.train.loss_output`);
        an error ``loss_fn`` raises keeps its type and gets a note on how it is called.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import split_model
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> objective = make_objective(gd, "mse")
      >>> value, (logs, pred, rest) = objective(params, rest, as_batch(jnp.ones((3, 2)),
      ...                                                              jnp.zeros((3, 1))))
      >>> pred.shape
      (3, 1)
    """
    if (loss is None) == (loss_fn is None):
        raise ValueError("pass exactly one of `loss` and `loss_fn`")
    dtype = compute_dtype(precision)
    rounded = rounds_matmul_operands(precision)
    value_of = None if loss is None else batch_loss(loss, normalize=normalize)

    def objective(params: PyTree, rest: PyTree, batch: Batch):
        with _bfloat16_dot.bfloat16_operands(rounded):
            return run(params, rest, batch)

    def run(params: PyTree, rest: PyTree, batch: Batch):
        model = nnx.merge(graphdef, cast_floating(params, dtype), rest, copy=True)
        run = batch._replace(x=cast_floating(batch.x, dtype))
        logs: Any = {}
        with batch_mask(batch.mask):  # batch statistics leave the padded rows out
            if loss_fn is not None:  # checked, and an error in it noted (loss_output)
                (value, logs), predictions = call_loss_fn(loss_fn, model, run), None
            else:
                assert value_of is not None
                predictions = upcast_low_precision(call_model(model, run.x))
                value = scalar(value_of(predictions, batch), LOSS_SCALAR)
        new_rest = _like(nnx.split(model, nnx.Param, ...)[2], rest)  # type: ignore[misc]
        return scalar(value), (scalar_logs(logs), predictions, new_rest)

    return jax.checkpoint(objective) if remat else objective


def make_loss_fn(graphdef: nnx.GraphDef, loss: str | losses.Loss) -> Callable:
    """Builds ``loss_fn(params, rest, x, y) -> (loss, (logits, new_rest))`` (unweighted).

    Differentiate it with ``jax.grad(..., has_aux=True)``; see :func:`make_objective`.

    Args:
      graphdef: the model's graphdef (train mode from :func:`~nnjax.train.split_model`).
      loss: a loss name or ``loss(predictions, y)`` (:mod:`nnjax.losses`).

    Returns:
      ``loss_fn(params, rest, x, y)``: a scalar loss (the loss's mean over the batch),
      the model's outputs ``(B, ...)`` and its updated non-parameter state.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import split_model
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> loss_fn = make_loss_fn(gd, "mse")
      >>> value, (logits, rest) = loss_fn(params, rest, jnp.ones((3, 2)), jnp.zeros((3, 1)))
      >>> logits.shape
      (3, 1)
    """
    objective = make_objective(graphdef, loss)

    def loss_fn(params: PyTree, rest: PyTree, x: Any, y: Any):
        value, (_, logits, new_rest) = objective(params, rest, as_batch(x, y))
        return value, (logits, new_rest)

    return loss_fn


def loss_on_batch(loss: str | Callable) -> Callable:
    """``loss`` called as ``fit`` calls it, on ``(outputs, y)``; one function per loss.

    The same function for the same loss lets ``jax.eval_shape`` reuse its trace, so a
    second ``fit`` with the same loss traces nothing (unhashable losses are not cached).
    A loss that returns more than a scalar raises ``loss_output.LossOutputError``.
    """
    try:
        return _cached_loss_on_batch(loss)
    except TypeError:  # an unhashable callable object
        return _cached_loss_on_batch.__wrapped__(loss)


@functools.lru_cache(maxsize=64)
def _cached_loss_on_batch(loss: str | Callable) -> Callable:
    value = batch_loss(loss)
    return lambda p, t: scalar(value(p, as_batch(p, t)), LOSS_SCALAR)


__all__ = [
    "as_batch",
    "batch_loss",
    "call_model",
    "canonical_loss",
    "compute_dtype",
    "loss_normalizer",
    "loss_on_batch",
    "make_loss_fn",
    "make_objective",
    "masked_mean",
    "rounds_matmul_operands",
]
