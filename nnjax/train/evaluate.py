"""Evaluation over whole, padded and masked batches (``predict``: :mod:`nnjax.train.prediction`).

The loss and every metric are accumulated from sufficient statistics of whole batches
(:class:`nnjax.metrics.Metric`), so the result does not depend on the batch size, the
padding of the last batch or the number of devices (or processes: each process reads
its own rows of every batch, and the statistics are reduced over the global batch).
``evaluate`` takes ``fit``'s objective, a ``loss`` or a ``loss_fn``, checked by the same
code (:func:`nnjax.train.setup.objective`), and computes what ``fit``'s validation
logs. ``predict`` and ``divisible`` are importable from here as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax import metrics as metrics_lib
from nnjax.train import (
    abstract_output,
    engine,
    eval_blocks,
    host_memory,
    label_broadcast,
    label_checks,
    model_call,
    output_activation,
    padded_rows,
    sharding,
    step,
    validation,
)
from nnjax.train.data import ArraySource, IterableSource, make_source
from nnjax.train.data_argument import data_as_one_argument
from nnjax.train.feeder import DeviceFeeder
from nnjax.train.prediction import divisible, inference_setup, predict, rounding_size
from nnjax.train.progress import Verbose, format_logs, resolve_verbose, say

if TYPE_CHECKING:  # setup imports this module (eval_source)
    from nnjax.train.setup import Objective

_LOSS = metrics_lib.Metric("loss", lambda *a: {}, lambda s: float(s["sum"] / max(s["count"], 1)))


def summarize(
    metrics: Sequence[metrics_lib.Metric], stats: list[dict], *, stacked: bool = False
) -> dict[str, float]:
    """``{"loss": ..., <log>: ..., <metric>: ...}`` from the host statistics of every batch.

    With ``stacked``, each entry holds a leading axis of batches (one dispatch's). The
    logs of a ``loss_fn`` (``stats["logs"]``, :func:`~nnjax.train.step.make_eval_step`;
    no metrics go with it) are averaged as ``fit`` averages them over training batches
    (:func:`log_means`); a log named ``"loss"`` replaces the loss, as in ``fit``'s logs.

    Example:
      >>> acc = metrics_lib.resolve("accuracy")
      >>> summarize([acc], [{"loss": {"sum": 2.0, "count": 4.0},
      ...                    "accuracy": {"correct": 3.0, "count": 4.0}}])
      {'loss': 0.5, 'accuracy': 0.75}
    """
    out = {}
    for metric in (_LOSS, *metrics):
        total = metrics_lib.accumulate(metric, [s[metric.name] for s in stats], stacked=stacked)
        out[metric.name] = metric.result(total)
        if metric is _LOSS and not metrics:  # loss_fn's logs follow the loss, as in fit
            out.update(log_means(stats))
    return out


def log_means(stats: list[dict]) -> dict[str, float]:
    """Each ``loss_fn`` log over every batch: its batch values weighted by real rows.

    ``sum_b(value_b * count_b) / max(sum_b(count_b), 1)`` in float64, ``count_b`` the
    batch's real (unpadded) rows (``stats["loss"]["count"]``): how ``fit`` averages
    them over an epoch's training batches (:func:`nnjax.train.engine.epoch_logs`). So
    a batch of 3 real rows counts 3 times, and a log computed over the padded batch's
    real rows (``batch.weight``, ``batch.mask``) averages to its value over the data.
    ``{}`` when ``stats`` hold no ``"logs"``.

    Example:
      >>> log_means([{"loss": {"count": np.array([4.0, 2.0])},
      ...             "logs": {"mae": np.array([1.0, 4.0])}}])
      {'mae': 2.0}
    """
    if not stats or "logs" not in stats[0]:
        return {}
    counts = [s["loss"]["count"] for s in stats]
    return {
        name: engine.count_weighted_mean([s["logs"][name] for s in stats], counts)
        for name in stats[0]["logs"]
    }


def evaluate_source(
    graphdef: nnx.GraphDef,
    params: Any,
    rest: Any,
    source: Any,
    *,
    loss: Any,
    metrics: tuple,
    mesh: Mesh,
    precision: Any = None,
    loss_fn: Callable | None = None,
    feeder: DeviceFeeder | None = None,
) -> dict[str, float]:
    """Mean loss and exact metrics over every example of ``source`` (in order).

    ``params`` and ``rest`` are on ``mesh``; each batch is sharded over it (the source's
    batch size must be a multiple of the mesh size). Batches are evaluated
    :data:`~nnjax.train.eval_blocks.BATCHES_PER_DISPATCH` per dispatch, fed by
    ``feeder`` (default: :func:`~nnjax.train.eval_blocks.host_feeder` of ``source``; pass
    a :class:`~nnjax.train.feeder.DeviceFeeder` to reuse its device copy of array data
    across calls, as ``fit``'s validation does).
    """
    feeder = feeder or eval_blocks.host_feeder(source, mesh)
    options = (("precision", precision), ("loss_fn", loss_fn))
    stats = eval_blocks.block_stats(
        graphdef, params, rest, feeder, loss=loss, metrics=metrics, options=options
    )
    return summarize(step.resolve_metrics(metrics), stats, stacked=True)


def eval_source(name: str, data: Any, batch_size: int, mesh_size: int, **kw: Any) -> Any:
    """A source of ``data`` whose batch size is a multiple of ``mesh_size``.

    Example:
      >>> eval_source("x", (np.ones((5, 2)), np.ones(5)), 3, 4).batch_size
      4
    """
    return divisible(make_source(name, data, batch_size=batch_size, **kw), mesh_size)


def _objective(loss: Any, loss_fn: Callable | None, metrics: Any, precision: Any) -> Objective:
    """``fit``'s :class:`~nnjax.train.setup.Objective` of ``evaluate``'s arguments."""
    from nnjax.train import setup  # setup imports this module (eval_source)

    return setup.objective(loss, loss_fn, metrics, precision, remat=False, caller="evaluate")


def _check_loss(model: nnx.Module, parts: tuple, source: Any, loss: Any, metrics: tuple) -> None:
    """Checks ``loss`` and ``metrics`` against the model's outputs and the labels.

    ``parts`` is the model's ``(graphdef, params, rest)`` in inference mode. Nothing is
    compiled: the outputs' shapes come from a trace.
    """
    graphdef, params, rest = parts
    example = source.example()
    inputs = source.x if isinstance(source, ArraySource) else None
    out = abstract_output.output_shape(
        model, graphdef, params, rest, example.x, name="data", whole=inputs,
        tuple_batch="evaluate" if isinstance(source, IterableSource) else None,
    )  # fmt: skip
    source.check_labels(out, loss, "data")
    validation.check_named_take_arrays(loss, metrics, out, example.y, "data")
    validation.check_loss_accepts(loss, out, example.y, "data")
    label_broadcast.warn_if_labels_broadcast(loss, out, example.y, "data")
    output_activation.check_logits(loss, graphdef, params, rest, example.x)
    whole = isinstance(source, ArraySource) and not isinstance(source.y, np.memmap)
    label_checks.check_metric_labels(loss, metrics, out, source.y if whole else example.y, "data")


@sharding.own_mesh
@host_memory.retaining
@data_as_one_argument
def evaluate(
    model: nnx.Module,
    data: Any,
    *,
    loss: losses.LossSpec | None = None,
    loss_fn: Callable | None = None,
    metrics: Any = None,
    batch_size: int = 128,
    steps: int | None = None,
    precision: Any = None,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
    verbose: Verbose = 0,
) -> dict[str, float]:
    """Loss and metrics of ``model`` (in inference mode) over every example of ``data``.

    Args:
      model: a Flax NNX model.
      data: ``(x, y)`` or ``(x, y, sample_weight)`` arrays (``x`` any pytree), or an
        iterable of such batches.
      loss: a loss name or callable ``loss(predictions, y)``, or one per output (a
        dict or tuple of them, as ``fit`` takes).
      loss_fn: instead of ``loss``, ``fit``'s ``loss_fn(model, batch) -> loss | (loss,
        logs)``, called on the inference-mode model with each padded
        :class:`~nnjax.train.data.Batch` (weigh per-example terms by ``batch.weight``,
        0 on padded rows): the loss it gives is what ``fit``'s validation logs as
        ``val_loss``, and each of its ``logs`` is returned under its name (``fit``'s
        ``val_<name>``), averaged over the batches as ``fit`` averages it over training
        batches: each batch's value weighted by its real rows (:func:`log_means`).
        ``metrics`` cannot go with it, as in ``fit``.
      metrics: metric specs, or a dict of them per output (as ``fit``); ``None``
        follows the loss (accuracy for classification).
      batch_size: examples per compiled call (the last batch is padded and masked).
      steps: batches to take from an endless iterable (not for arrays, always
        evaluated whole).
      precision: as ``fit``'s (``"bfloat16"`` to compute in bfloat16).
      devices: devices to shard the batches over.
      check_inputs: reject integer ``x`` (see :func:`~nnjax.train.validation.check_inputs_ok`)
        other than the inputs the model declares in ``integer_inputs``.
      verbose: ``0`` (the default: silent, as ``evaluate`` always was; Keras prints
        by default) or, as ``fit`` takes it, ``"auto"``, ``1`` or ``2``: one line at
        the end, ``"evaluate - T s - loss: ... - <metric>: ..."`` in the format of
        ``fit``'s epoch lines (there is no bar; only process 0 of a multi-process run
        prints).

    Returns:
      ``{"loss": ..., "<metric>": ...}`` as floats, exact for any batching: the names
      that ``fit``'s validation logs, without their ``val_`` prefix (with a
      ``loss_fn``, ``{"loss": ..., "<log>": ...}``; a log named ``"loss"`` replaces
      the loss, as it does in ``fit``'s logs).

    Raises:
      ShapeError: inputs the model cannot take, labels the loss cannot compare with
        its outputs, or arrays of different lengths (all ``ValueError`` s).
      ValueError: bad ``data`` (an empty set, a list ``[x, y]``, NaN inputs), ``steps``
        with arrays, or labels outside the model's classes, in any batch of an
        iterable (checked as it is read); neither or both of ``loss`` and
        ``loss_fn``, ``metrics`` with ``loss_fn``, an unknown ``precision``, or a
        ``verbose`` other than ``"auto"``, 0, 1 or 2 (``fit``'s messages); a
        ``loss_fn`` that returns more than a scalar loss (when traced).
      TypeError: integer inputs with ``check_inputs``; a count that is not an integer.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
      >>> data = (np.ones((5, 2)), np.zeros(5, int))
      >>> logs = evaluate(model, data, loss="cross_entropy")
      >>> sorted(logs)
      ['accuracy', 'loss']

      A ``loss_fn`` that ``fit`` trained with gives the same loss, and its logs;
      ``verbose=2`` prints the result on a line:

      >>> import jax.numpy as jnp
      >>> import optax
      >>> from nnjax.train import masked_mean
      >>> def loss_fn(model, batch):
      ...     logits = model(batch.x)
      ...     values = optax.softmax_cross_entropy_with_integer_labels(logits, batch.y)
      ...     loss = jnp.sum(values * batch.weight) / jnp.sum(batch.weight)
      ...     return loss, {"top_logit": masked_mean(jnp.max(logits, axis=-1), batch.mask)}
      >>> custom = evaluate(model, data, loss_fn=loss_fn, verbose=2)
      evaluate - ...s - loss: 0.7801 - top_logit: ...
      >>> abs(custom["loss"] - logs["loss"]) < 1e-6, sorted(custom)
      (True, ['loss', 'top_logit'])
    """
    validation.check_flags("evaluate", check_inputs=check_inputs)
    batch_size = validation.check_count("batch_size", batch_size, 1)
    steps = None if steps is None else validation.check_count("steps", steps, 1)
    verbose = resolve_verbose(verbose)  # fit's check; 0 off process 0
    objective = _objective(loss, loss_fn, metrics, precision)  # unknown names fail here
    start = time.perf_counter()
    source = eval_source(
        "data", data, batch_size, rounding_size(devices), steps_per_epoch=steps,
        steps_name="steps", check_inputs=check_inputs,
        integer_ok=model_call.integer_input_paths(model),
    )  # fmt: skip
    mesh, graphdef, params, rest = inference_setup(model, source.batch_size, devices)
    if objective.loss is not None:  # a loss_fn is checked as it is traced (as fit's)
        parts = (graphdef, params, rest)
        _check_loss(model, parts, source, objective.loss, objective.metrics)
    padded_rows.warn_if_loss_counts(objective.loss, objective.loss_fn, model, source)
    params, rest = sharding.put_replicated((params, rest), mesh, copy=False)  # no donation
    with jax.set_mesh(mesh):  # its programs' context: their mesh (sharding.own_mesh)
        logs = evaluate_source(
            graphdef, params, rest, source, loss=objective.loss, metrics=objective.metrics,
            mesh=mesh, precision=dict(objective.options)["precision"], loss_fn=objective.loss_fn,
        )  # fmt: skip
    if verbose:  # one line, as fit's epoch line
        say(f"evaluate - {time.perf_counter() - start:.1f}s - {format_logs(logs)}", 2)
    return logs


__all__ = [
    "divisible",
    "eval_source",
    "evaluate",
    "evaluate_source",
    "log_means",
    "predict",
    "summarize",
]
