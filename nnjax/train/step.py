"""Pure training and evaluation steps over split model state.

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

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from nnjax import losses, metrics
from nnjax.train.data import Batch

PyTree = Any
TrainStep = Callable[..., tuple[PyTree, PyTree, PyTree, dict[str, jax.Array]]]
MetricSpec = str | metrics.Metric | Callable[[jax.Array, jax.Array], jax.Array]

_TRAIN_MODE = {"deterministic": False, "use_running_average": False}
_EVAL_MODE = {"deterministic": True, "use_running_average": True}


def split_model(model: nnx.Module, *, training: bool = True) -> tuple[nnx.GraphDef, PyTree, PyTree]:
    """Splits ``model`` into ``(graphdef, params, rest)``.

    The graphdef is taken from a view of the model in training mode (dropout on,
    batch statistics updated) or, with ``training=False``, in inference mode; the
    model itself is not modified. ``params`` holds the ``nnx.Param`` leaves, ``rest``
    everything else (batch statistics, RNG keys and counts).

    Args:
      model: any Flax NNX module.
      training: which mode the returned graphdef runs in.

    Returns:
      ``(graphdef, params, rest)``; ``nnx.merge(graphdef, params, rest)`` rebuilds it.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> graphdef, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> params["layers"][0]["kernel"].shape
      (2, 4)
    """
    mode = _TRAIN_MODE if training else _EVAL_MODE
    view = nnx.view(model, raise_if_not_found=False, **mode)
    graphdef, params, rest = nnx.split(view, nnx.Param, ...)  # type: ignore[misc]
    # Fresh Variable containers: later steps never write into ``model`` itself.
    return graphdef, *jax.tree.map(lambda leaf: leaf, (params, rest))


def graphdef_for(model: nnx.Module, *, training: bool) -> nnx.GraphDef:
    """The static graphdef of ``model`` in training or inference mode (see :func:`split_model`).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd = graphdef_for(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
      >>> isinstance(gd, nnx.GraphDef)
      True
    """
    return split_model(model, training=training)[0]


def call_model(model: Any, x: Any) -> Any:
    """Calls ``model(x)``.

    A tuple ``x`` is passed as positional inputs, a dict as keyword inputs
    (``WideAndDeep``: ``{"x_wide": ..., "x_deep": ...}``).

    Raises:
      ValueError: dict keys that the model's ``__call__`` does not take (names both).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> call_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), jnp.ones((3, 2))).shape
      (3, 1)
    """
    if isinstance(x, dict):
        params = inspect.signature(model.__call__).parameters
        names = [
            n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = sorted(set(x) - set(names))
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise ValueError(
                f"input keys {unknown} do not match the model's inputs {names} "
                f"({type(model).__name__}.__call__); got keys {sorted(x)}"
            )
        return model(**x)
    if isinstance(x, tuple | list):
        return model(*x)
    return model(x)


def metric_name(metric: MetricSpec) -> str:
    """The key under which ``metric`` is logged: its name or the callable's ``__name__``.

    Example:
      >>> metric_name("accuracy"), metric_name(losses.mse)
      ('accuracy', 'mse')
    """
    return metrics.resolve(metric).name


def resolve_metrics(names: Any) -> tuple[metrics.Metric, ...]:
    """The :class:`nnjax.metrics.Metric` of each spec.

    A spec is a name, a ``Metric`` or a callable; a bare string is one metric.

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


def _cast(tree: PyTree, dtype: Any) -> PyTree:
    def cast(a):
        return a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a

    return tree if dtype is None else jax.tree.map(cast, tree)


def _for_loss(logits: PyTree) -> PyTree:
    """Upcasts low-precision outputs (bfloat16/float16) to float32 for the loss."""

    def up(a):
        if jnp.issubdtype(a.dtype, jnp.floating) and jnp.finfo(a.dtype).bits < 32:
            return a.astype(jnp.float32)
        return a

    return jax.tree.map(up, logits)


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


def batch_loss(loss: str | losses.Loss) -> Callable[[PyTree, Batch], jax.Array]:
    """``value(predictions, batch)``: the loss of a whole masked batch.

    A loss that takes ``reduction="none"`` (every loss of :mod:`nnjax.losses`) is
    ``sum(weight * per_example) / sum(mask)``: padded rows never count and sample or
    class weights scale their examples. Any other callable is a batch-level loss,
    called on the whole batch.

    Example:
      >>> value = batch_loss("mse")
      >>> b = as_batch(jnp.zeros((2, 1)), jnp.ones((2, 1)), mask=jnp.array([1.0, 0.0]))
      >>> float(value(jnp.zeros((2, 1)), b._replace(weight=b.mask)))
      1.0
    """
    fn = losses.get(loss)
    rows = metrics.per_example(fn)

    def value(predictions: PyTree, batch: Batch) -> jax.Array:
        if rows is None:
            return fn(predictions, batch.y)
        per = rows(predictions, batch.y)
        return jnp.sum(per * batch.weight) / jnp.maximum(jnp.sum(batch.mask), 1.0)

    return value


def _scalar(value: Any) -> jax.Array:
    if jnp.shape(value) != ():
        raise ValueError(
            f"loss_fn must return a scalar loss (or (loss, logs)); got an array of shape "
            f"{jnp.shape(value)}. Reduce it, e.g. with jnp.mean"
        )
    return jnp.asarray(value, jnp.float32)


def make_objective(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None = None,
    *,
    loss_fn: Callable | None = None,
    precision: Any = None,
    remat: bool = False,
) -> Callable:
    """``objective(params, rest, batch) -> (loss, (logs, predictions, new_rest))``.

    The model is merged from copies of the inputs (train-mode ``graphdef``), so the
    function is pure; its non-parameter state after the call is ``new_rest``. Either
    ``loss(predictions, y)`` on ``call_model(model, batch.x)`` (see :func:`batch_loss`),
    or ``loss_fn(model, batch) -> loss | (loss, logs)`` (``predictions`` is then None).
    ``precision="bfloat16"`` runs the model on bfloat16 copies of the parameters and
    floating inputs; gradients, the loss and the state stay float32. ``remat``
    recomputes the forward pass in the backward pass (:func:`jax.checkpoint`).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> objective = make_objective(gd, "mse")
      >>> value, (logs, pred, rest) = objective(params, rest, as_batch(jnp.ones((3, 2)),
      ...                                                              jnp.zeros((3, 1))))
      >>> pred.shape
      (3, 1)
    """
    if (loss is None) == (loss_fn is None):
        raise ValueError("pass exactly one of `loss` and `loss_fn`")
    dtype = None if precision is None else jnp.dtype(precision)
    value_of = None if loss is None else batch_loss(loss)

    def objective(params: PyTree, rest: PyTree, batch: Batch):
        model = nnx.merge(graphdef, _cast(params, dtype), rest, copy=True)
        run = batch._replace(x=_cast(batch.x, dtype))
        logs: Any = {}
        if loss_fn is not None:
            value = loss_fn(model, run)
            if isinstance(value, tuple):
                value, logs = value
            predictions = None
        else:
            assert value_of is not None
            predictions = _for_loss(call_model(model, run.x))
            value = value_of(predictions, batch)
        new_rest = _like(nnx.split(model, nnx.Param, ...)[2], rest)  # type: ignore[misc]
        logs = {k: _scalar(v) for k, v in dict(logs).items()}
        return _scalar(value), (logs, predictions, new_rest)

    return jax.checkpoint(objective) if remat else objective


def make_loss_fn(graphdef: nnx.GraphDef, loss: str | losses.Loss) -> Callable:
    """Builds ``loss_fn(params, rest, x, y) -> (loss, (logits, new_rest))`` (unweighted).

    Differentiate it with ``jax.grad(..., has_aux=True)``; see :func:`make_objective`.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
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


def make_train_step(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None,
    tx: optax.GradientTransformation,
    metrics: Any = (),
    *,
    loss_fn: Callable | None = None,
    precision: Any = None,
    remat: bool = False,
) -> TrainStep:
    """Builds the pure update ``step(params, opt_state, rest, batch)``.

    ``batch`` is a :class:`~nnjax.train.data.Batch` (or ``x, y`` with unit weights).
    Returns ``(params, opt_state, rest, logs)``: ``logs["loss"]`` the batch loss,
    ``logs["count"]`` its real examples, ``logs["logs"]`` what ``loss_fn`` returned
    besides the loss, ``logs["metrics"]`` each metric's statistics (pre-update outputs).

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
    objective = make_objective(graphdef, loss, loss_fn=loss_fn, precision=precision, remat=remat)
    grad_fn = jax.value_and_grad(objective, has_aux=True)
    metric_list = resolve_metrics(metrics)

    def step(params: PyTree, opt_state: PyTree, rest: PyTree, x: Any, y: Any = None):
        batch = as_batch(x, y)
        (value, (logs, predictions, rest)), grads = grad_fn(params, rest, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        predictions = jax.lax.stop_gradient(predictions)
        stats = {m.name: m.stats(predictions, batch.y, batch.mask) for m in metric_list}
        out = {"loss": value, "count": jnp.sum(batch.mask), "logs": logs, "metrics": stats}
        return params, opt_state, rest, out

    return step


def make_eval_step(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None,
    metrics: Any = (),
    *,
    precision: Any = None,
    loss_fn: Callable | None = None,
) -> Callable[..., dict[str, Any]]:
    """Builds ``eval_step(params, rest, batch) -> stats`` over whole, masked batches.

    ``graphdef`` should be in inference mode. The loss is computed on the whole batch
    (weighted and masked, :func:`batch_loss`) and returned as ``stats["loss"] =
    {"sum": loss * count, "count": count}``; each metric's statistics under its name
    (:class:`nnjax.metrics.Metric`). Add them up over batches, then take the results.
    With ``loss_fn`` (and no metrics), its value on the inference-mode model is the loss.

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
        batch = batch._replace(weight=batch.weight * batch.mask)
        value, (_, predictions, _) = objective(params, rest, batch)
        count = jnp.sum(batch.mask)
        stats = {m.name: m.stats(predictions, batch.y, batch.mask) for m in metric_list}
        return {"loss": {"sum": value * count, "count": count}, **stats}

    return eval_step


def make_predict_step(graphdef: nnx.GraphDef) -> Callable[[PyTree, PyTree, jax.Array], jax.Array]:
    """Builds ``predict_step(params, rest, x) -> model(x)`` (inference-mode ``graphdef``).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd, params, rest = split_model(MLP(2, (4,), 3, rngs=nnx.Rngs(0)), training=False)
      >>> make_predict_step(gd)(params, rest, jnp.ones((5, 2))).shape
      (5, 3)
    """

    def predict_step(params: PyTree, rest: PyTree, x: Any) -> Any:
        return call_model(nnx.merge(graphdef, params, rest, copy=True), x)

    return predict_step


__all__ = [
    "as_batch",
    "batch_loss",
    "call_model",
    "graphdef_for",
    "make_eval_step",
    "make_loss_fn",
    "make_objective",
    "make_predict_step",
    "make_train_step",
    "metric_name",
    "resolve_metrics",
    "split_model",
]
