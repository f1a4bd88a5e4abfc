"""Pure training and evaluation steps over split model state.

The objective (the masked batch loss and the model call) lives in
:mod:`nnjax.train.objective`; its names are re-exported here.

A Flax NNX model is split once into a static ``graphdef`` and two pytrees: ``params``
(every ``nnx.Param``) and ``rest`` (all other state: ``nnx.BatchStat`` running
statistics, ``RngKey``/``RngCount`` dropout streams, ...). The steps built here are plain
functions of those pytrees, ready for :func:`jax.jit` (with buffer donation),
:func:`jax.vmap` (sweeps) and :func:`jax.lax.scan` (several steps per dispatch).

Example:
  >>> import jax.numpy as jnp, optax
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> model = MLP(4, (8,), 3, rngs=nnx.Rngs(0))
  >>> graphdef, params, rest = split_model(model)
  >>> tx = optax.sgd(0.1)
  >>> step = jax.jit(make_train_step(graphdef, "cross_entropy", tx, "accuracy"))
  >>> x, y = jnp.ones((2, 4)), jnp.array([0, 2])
  >>> params, opt_state, rest, logs = step(params, tx.init(params), rest, x, y)
  >>> sorted(logs), sorted(logs["metrics"])
  (['count', 'logs', 'loss', 'metrics'], ['accuracy'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import nnjax.functional as F
from nnjax import losses, metrics
from nnjax.nn._validate import check_module
from nnjax.train import loss_scale, loss_weights, optax_checks
from nnjax.train.data import Batch
from nnjax.train.model_split import graph_in_mode, graphdef_for, split_model
from nnjax.train.objective import (
    as_batch,
    batch_loss,
    call_model,
    loss_normalizer,
    make_loss_fn,
    make_objective,
    masked_mean,
)
from nnjax.train.precision import make_forward

PyTree = Any
TrainStep = Callable[..., tuple[PyTree, PyTree, PyTree, dict[str, jax.Array]]]
MetricSpec = str | metrics.Metric | Callable[[jax.Array, jax.Array], jax.Array]


def metric_name(metric: MetricSpec) -> str:
    """The key under which ``metric`` is logged: its name or the callable's ``__name__``.

    Args:
      metric: a name, a :class:`nnjax.metrics.Metric` or a callable.

    Returns:
      The name (for a callable without ``__name__``, ``"metric"``).

    Example:
      >>> metric_name("accuracy"), metric_name(losses.mse)
      ('accuracy', 'mse')
    """
    return metrics.resolve(metric).name


def resolve_metrics(names: Any) -> tuple[metrics.Metric, ...]:
    """The :class:`nnjax.metrics.Metric` of each spec.

    A spec is a name, a ``Metric`` or a callable; a bare string is one metric.

    Args:
      names: one spec or a sequence of specs (``None``: none).

    Returns:
      One :class:`nnjax.metrics.Metric` per spec, in order.

    Raises:
      ValueError: an unknown name.
      TypeError: a dict instead of a sequence.

    Example:
      >>> [m.name for m in resolve_metrics("accuracy")]
      ['accuracy']
    """
    resolved = tuple(metrics.resolve(m) for m in metrics.as_specs(names))
    names = [m.name for m in resolved]
    if "loss" in names:
        raise ValueError("`metrics` may not contain 'loss': the loss is always logged")
    if len(set(names)) != len(names):
        raise ValueError(f"`metrics` names a metric twice: {names}")
    return resolved


def metric_stats(metric_list: Sequence[metrics.Metric], predictions: Any, batch: Batch) -> dict:
    """Each metric's statistics of one batch, by name (weighted ones get its weights).

    Example:
      >>> m = metrics.resolve("mse")
      >>> b = as_batch(jnp.zeros((2, 1)), jnp.ones((2, 1)))
      >>> {k: float(v) for k, v in metric_stats([m], jnp.zeros((2, 1)), b)["mse"].items()}
      {'sum': 2.0, 'count': 2.0}
    """
    return {
        m.name: m.stats(predictions, batch.y, batch.mask, *([batch.weight] if m.weighted else []))
        for m in metric_list
    }


def make_train_step(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None,
    tx: optax.GradientTransformation,
    metrics: Any = (),
    *,
    loss_fn: Callable | None = None,
    precision: Any = None,
    remat: bool = False,
    layout: Any = None,
) -> TrainStep:
    """Builds the pure update ``step(params, opt_state, rest, batch)``.

    ``batch`` is a :class:`~nnjax.train.data.Batch` (or ``x, y`` with unit weights).
    Returns ``(params, opt_state, rest, logs)``: ``logs["loss"]`` the batch loss,
    ``logs["count"]`` its real examples, ``logs["logs"]`` what ``loss_fn`` returned
    besides the loss, ``logs["metrics"]`` each metric's statistics (pre-update outputs).
    An ``update`` taking extra arguments gets ``value=``, the batch loss (``reduce_on_plateau``).
    A ``tx`` from :func:`~nnjax.train.dynamic_loss_scale` gets the scaled loss's gradients.

    Args:
      graphdef: from :func:`split_model` (training mode).
      loss: a loss name or callable ``loss(predictions, y)`` (or None with ``loss_fn``).
      tx: the Optax transformation; ``opt_state = tx.init(params)``.
      metrics: metric specs (:func:`nnjax.metrics.resolve`).
      loss_fn: instead of ``loss``, ``loss_fn(model, batch) -> loss | (loss, logs)``
        (see :func:`make_objective`).
      precision: ``None``, or ``"bfloat16"`` to run the model on bfloat16 copies of the
        parameters and floating inputs (see :func:`make_objective`).
      remat: recompute the forward pass in the backward pass (:func:`jax.checkpoint`).
      layout: a :class:`~nnjax.train.sharding.StateLayout`: the updated parameters and
        optimizer state are constrained to it (sharded parameters, FSDP), so every
        dispatch returns the layout it was given (no recompiles).

    Example:
      >>> import optax
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> step = make_train_step(gd, "mse", optax.sgd(0.1))
      >>> out = step(params, optax.sgd(0.1).init(params), rest, jnp.ones((3, 2)), jnp.zeros((3, 1)))
      >>> float(out[3]["count"])
      3.0
    """
    # a per-example loss is differentiated as a sum and normalized after: dividing inside
    # would sum a split batch's mask across devices mid-step (a 2-device LSTM: 1.35x)
    objective = make_objective(
        graphdef, loss, loss_fn=loss_fn, precision=precision, remat=remat, normalize=False
    )
    normalizer = loss_normalizer(loss)  # after make_objective has checked the arguments
    grad_fn = loss_scale.value_and_grad(objective)  # scaled where opt_state says so
    metric_list = resolve_metrics(metrics)
    pass_value = optax_checks.takes_value(tx)

    def step(params: PyTree, opt_state: PyTree, rest: PyTree, x: Any, y: Any = None):
        batch = as_batch(x, y)
        if layout is not None:  # pins the layout of a device loop's carry too
            params, opt_state = layout.constrain(params, opt_state)
        (value, (logs, predictions, rest)), grads = grad_fn(params, rest, batch, opt_state)
        if normalizer is not None:
            scale = 1.0 / normalizer(batch).astype(jnp.promote_types(value.dtype, jnp.float32))
            value, grads = value * scale, jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads)
        updates, opt_state = _update(tx, grads, opt_state, params, value, extra=pass_value)
        params = optax.apply_updates(params, updates)
        if layout is not None:
            params, opt_state = layout.constrain(params, opt_state)
        predictions = jax.lax.stop_gradient(predictions)
        stats = metric_stats(metric_list, predictions, batch)
        out = {"loss": value, "count": jnp.sum(batch.mask), "logs": logs, "metrics": stats}
        return params, opt_state, rest, out

    return step


def _update(tx: Any, grads: Any, opt_state: Any, params: Any, value: Any, *, extra: bool) -> Any:
    """``tx.update``, with ``value=`` (the batch loss: ``reduce_on_plateau`` reads it) if taken.

    An update requiring another extra argument: a TypeError naming ``optimizer=`` and it.
    """
    try:
        if extra:
            return tx.update(grads, opt_state, params, value=value)
        return tx.update(grads, opt_state, params)
    except TypeError as err:
        better = optax_checks.missing_extra_args(err)
        if better is None:
            raise
        raise better from None


def make_eval_step(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None,
    metrics: Any = (),
    *,
    precision: Any = None,
    loss_fn: Callable | None = None,
) -> Callable[..., dict[str, Any]]:
    """Builds ``eval_step(params, rest, batch) -> stats`` over whole, masked batches.

    ``graphdef`` should be in inference mode. The whole batch's loss (weighted and masked,
    :func:`batch_loss`) is ``stats["loss"] = {"sum": loss * count, "count": count}``, each
    metric's statistics are under its name (:class:`nnjax.metrics.Metric`): add them up
    over batches, then take the results. With ``loss_fn`` (no metrics) its value on the
    inference-mode model is the loss and ``stats["logs"]`` its logs (scalars), to average
    weighted by ``count`` as ``fit`` does over training batches (``evaluate.summarize``).

    Args:
      graphdef: the model's inference-mode graphdef (:func:`graphdef_for`).
      loss: the loss (a name or function; see :func:`batch_loss`), or ``None`` with
        ``loss_fn``.
      metrics: metric specs (:func:`resolve_metrics`).
      precision: ``None`` or ``"bfloat16"``, as in :func:`make_objective`.
      loss_fn: ``loss_fn(model, batch) -> loss | (loss, logs)`` in place of ``loss``.

    Returns:
      ``eval_step(params, rest, batch)``: a dict of statistics as above; ``"loss"`` holds
      scalars in the loss's dtype (float32, float64), ``count`` the real rows.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
      >>> batch = as_batch(jnp.ones((3, 2)), jnp.zeros((3, 1)), mask=jnp.array([1.0, 1, 0]))
      >>> float(make_eval_step(gd, "mse")(params, rest, batch)["loss"]["count"])
      2.0
    """
    objective = make_objective(graphdef, loss, loss_fn=loss_fn, precision=precision)
    metric_list = resolve_metrics(metrics)

    def eval_step(params: PyTree, rest: PyTree, batch: Batch) -> dict[str, Any]:
        batch = batch._replace(weight=loss_weights.masked(batch.weight, batch.mask))
        with F.forward_only():  # the ops' fastest formulations without gradients
            value, (logs, predictions, _) = objective(params, rest, batch)
        count = jnp.sum(batch.mask).astype(value.dtype)  # float32, or a wider loss's dtype
        stats = metric_stats(metric_list, predictions, batch)
        extra = {} if loss_fn is None else {"logs": logs}  # no metrics go with loss_fn
        return {"loss": {"sum": value * count, "count": count}, **extra, **stats}

    return eval_step


def make_predict_step(graphdef: nnx.GraphDef, precision: Any = None) -> Callable[..., Any]:
    """Builds ``predict_step(params, rest, x) -> model(x)`` (inference-mode ``graphdef``).

    Args:
      graphdef: the model's inference-mode graphdef (:func:`graphdef_for`).
      precision: ``None`` or ``"bfloat16"``, as ``fit``'s
        (:func:`~nnjax.train.precision.make_forward`).

    Returns:
      ``predict_step(params, rest, x)``: the model's output on ``x`` (``(B, ...)``, in
      the model's output dtype; float32 under a ``precision``); ``rest`` is not updated.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd, params, rest = split_model(MLP(2, (4,), 3, rngs=nnx.Rngs(0)), training=False)
      >>> make_predict_step(gd)(params, rest, jnp.ones((5, 2))).shape
      (5, 3)
    """
    forward = make_forward(graphdef, precision)

    def predict_step(params: PyTree, rest: PyTree, x: Any) -> Any:
        with F.forward_only():  # the ops' fastest formulations without gradients
            return forward(params, rest, x)

    return predict_step


__all__ = [
    "as_batch",
    "batch_loss",
    "call_model",
    "check_module",
    "graph_in_mode",
    "graphdef_for",
    "make_eval_step",
    "make_loss_fn",
    "make_objective",
    "make_predict_step",
    "make_train_step",
    "masked_mean",
    "metric_name",
    "metric_stats",
    "resolve_metrics",
    "split_model",
]
