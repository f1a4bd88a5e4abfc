"""Evaluation and prediction over whole, padded and masked batches.

The loss and every metric are accumulated from sufficient statistics of whole batches
(:class:`nnjax.metrics.Metric`), so the result does not depend on the batch size, the
padding of the last batch or the number of devices (or processes: each process reads
its own rows of every batch, and the statistics are reduced over the global batch).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax import metrics as metrics_lib
from nnjax.train import (
    abstract_output,
    eval_blocks,
    host_memory,
    label_broadcast,
    label_checks,
    model_call,
    objective,
    output_activation,
    padded_rows,
    sharding,
    size_buckets,
    step,
    validation,
)
from nnjax.train.data import ArraySource, IterableSource, make_source, no_steps
from nnjax.train.data_argument import data_as_one_argument
from nnjax.train.feeder import DeviceFeeder

_LOSS = metrics_lib.Metric("loss", lambda *a: {}, lambda s: float(s["sum"] / max(s["count"], 1)))


def summarize(
    metrics: Sequence[metrics_lib.Metric], stats: list[dict], *, stacked: bool = False
) -> dict[str, float]:
    """``{"loss": ..., name: ...}`` from the host statistics of every batch.

    With ``stacked``, each entry holds a leading axis of batches (one dispatch's).

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
    return out


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


def divisible(source: Any, mesh_size: int) -> Any:
    """``source`` with its batch size rounded up to a multiple of ``mesh_size``.

    An array source gets a larger batch size, an iterable's batches are padded
    (:meth:`IterableSource.round_batch`). Padded rows are masked, so results do not
    change.

    Example:
      >>> divisible(make_source("x", (np.ones((6, 2)), np.ones(6)), batch_size=16), 4).batch_size
      8
    """
    if isinstance(source, IterableSource):
        return source.round_batch(mesh_size)
    if isinstance(source, ArraySource) and source.batch_size % mesh_size:
        size = -(-source.batch_size // mesh_size) * mesh_size
        source = ArraySource(
            source.x, source.y, batch_size=size, weight=source.weight, name=source.name
        )
    return source


def _mesh_size(devices: Sequence[jax.Device] | None) -> int:
    """What batch sizes are rounded up to: the given devices, or all of a multi-process run."""
    if devices:
        return len(devices)
    return jax.device_count() if jax.process_count() > 1 else 1


def _setup(model, batch_size, devices):
    mesh = sharding.make_mesh(sharding.choose_devices(batch_size, devices))
    graphdef, params, rest = step.split_model(model, training=False)
    return mesh, graphdef, params, rest


@sharding.own_mesh
@host_memory.retaining
@data_as_one_argument
def evaluate(
    model: nnx.Module,
    data: Any,
    *,
    loss: losses.LossSpec,
    metrics: Any = None,
    batch_size: int = 128,
    steps: int | None = None,
    precision: Any = None,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
) -> dict[str, float]:
    """Loss and metrics of ``model`` (in inference mode) over every example of ``data``.

    Args:
      model: a Flax NNX model.
      data: ``(x, y)`` or ``(x, y, sample_weight)`` arrays (``x`` any pytree), or an
        iterable of such batches.
      loss: a loss name or callable ``loss(predictions, y)``, or one per output (a
        dict or tuple of them, as ``fit`` takes).
      metrics: metric specs, or a dict of them per output (as ``fit``); ``None``
        follows the loss (accuracy for classification).
      batch_size: examples per compiled call (the last batch is padded and masked).
      steps: batches to take from an endless iterable (not for arrays, always
        evaluated whole).
      precision: ``"bfloat16"`` to compute in bfloat16.
      devices: devices to shard the batches over.
      check_inputs: reject integer ``x`` (see :func:`~nnjax.train.validation.check_inputs_ok`)
        other than the inputs the model declares in ``integer_inputs``.

    Returns:
      ``{"loss": ..., "<metric>": ...}`` as floats, exact for any batching.

    Raises:
      ShapeError: inputs the model cannot take, labels the loss cannot compare with
        its outputs, or arrays of different lengths (all ``ValueError`` s).
      ValueError: bad ``data`` (an empty set, a list ``[x, y]``, NaN inputs), ``steps``
        with arrays, or labels outside the model's classes, in any batch of an
        iterable (checked as it is read).
      TypeError: integer inputs with ``check_inputs``; a count that is not an integer.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
      >>> logs = evaluate(model, (np.ones((5, 2)), np.zeros(5, int)), loss="cross_entropy")
      >>> sorted(logs)
      ['accuracy', 'loss']
    """
    validation.check_flags("evaluate", check_inputs=check_inputs)
    batch_size = validation.check_count("batch_size", batch_size, 1)
    steps = None if steps is None else validation.check_count("steps", steps, 1)
    resolved = objective.canonical_loss(loss)  # unknown names fail here
    metrics = objective.canonical_specs(metrics_lib.specs_for(resolved, metrics))
    step.resolve_metrics(metrics)
    source = eval_source(
        "data", data, batch_size, _mesh_size(devices), steps_per_epoch=steps,
        steps_name="steps", check_inputs=check_inputs,
        integer_ok=model_call.integer_input_paths(model),
    )  # fmt: skip
    mesh, graphdef, params, rest = _setup(model, source.batch_size, devices)
    example = source.example()
    inputs = source.x if isinstance(source, ArraySource) else None
    out = abstract_output.output_shape(
        model, graphdef, params, rest, example.x, name="data", whole=inputs,
        tuple_batch="evaluate" if isinstance(source, IterableSource) else None,
    )  # fmt: skip
    source.check_labels(out, resolved, "data")
    validation.check_named_take_arrays(resolved, metrics, out, example.y, "data")
    validation.check_loss_accepts(resolved, out, example.y, "data")
    label_broadcast.warn_if_labels_broadcast(resolved, out, example.y, "data")
    output_activation.check_logits(resolved, graphdef, params, rest, example.x)
    whole = isinstance(source, ArraySource) and not isinstance(source.y, np.memmap)
    label_checks.check_metric_labels(
        resolved, metrics, out, source.y if whole else example.y, "data"
    )
    padded_rows.warn_if_loss_counts(resolved, None, model, source)
    params, rest = sharding.put_replicated((params, rest), mesh, copy=False)  # no donation
    with jax.set_mesh(mesh):  # its programs' context: their mesh (sharding.own_mesh)
        return evaluate_source(
            graphdef, params, rest, source, loss=resolved, metrics=metrics, mesh=mesh,
            precision=precision,
        )  # fmt: skip


def _predict_items(data: Iterable, tuples: list[bool]) -> Iterator[tuple[Any, np.ndarray]]:
    """``(x, dummy labels)`` from batches ``x`` or ``(x, ...)`` (the rest ignored).

    ``tuples`` gets whether the first batch was a tuple (its ``x`` taken from it).
    """
    for i, item in enumerate(data):
        if i == 0:
            tuples.append(isinstance(item, tuple | list))
        x = item[0] if isinstance(item, tuple | list) else item
        leaves = jax.tree.leaves(x)
        if not leaves or not np.ndim(leaves[0]):
            raise ValueError(
                f"predict: batch {i} of `x` is {type(x).__name__} {x!r:.60}; every batch must "
                "be an array, a dict of arrays, or a tuple (x, ...) (for one array of "
                "examples, pass np.asarray(x))"
            )
        yield x, np.zeros(len(leaves[0]), np.float32)


def _is_inputs(x: Any) -> bool:
    """Whether ``predict``'s ``x`` is the inputs (arrays), not an iterable of batches."""
    first = x
    while isinstance(first, list) and first:
        first = first[0]
    numbers = isinstance(x, list) and isinstance(first, int | float | complex)
    return isinstance(x, dict | tuple) or hasattr(x, "__array__") or numbers


def _not_xy(model: nnx.Module, x: Any) -> None:
    """A tuple ``x`` must not have more inputs than the model takes (an ``(x, y)`` pair)."""
    try:
        params = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):
        return
    takes = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(x) <= takes:
        return
    raise TypeError(
        f"predict takes the inputs x only: got a tuple of {len(x)} arrays "
        f"{validation.describe(x)} ((x, y)?), but {type(model).__name__} takes {takes} "
        f"positional input{'s' if takes != 1 else ''}; pass predict(model, x)"
    )


def _predict_source(
    model: nnx.Module, x: Any, batch_size: int, steps: int | None, check_inputs: bool
) -> tuple[Any, bool]:
    """The source of ``x``, and whether it is an iterable of tuple batches ``(x, ...)``."""
    integer_ok = model_call.integer_input_paths(model)
    if _is_inputs(x):
        no_steps("x", steps, "steps")
        x = validation.host_tree("x", x)
        n = validation.check_lengths("predict: `x`", {"x": x})
        if n == 0:
            raise ValueError(f"predict: `x` is empty: it has shape {validation.describe(x)}")
        if isinstance(x, tuple):
            _not_xy(model, x)
        validation.check_inputs_ok("predict", x, check_inputs=check_inputs, integer_ok=integer_ok)
        return ArraySource(
            x, np.zeros(n, np.float32), batch_size=min(batch_size, size_buckets.bucket(n))
        ), False
    if not isinstance(x, Iterable):
        raise TypeError(
            f"predict: `x` must be an array, a pytree of (N, ...) arrays, or an iterable of "
            f"batches x or (x, ...); got {type(x).__name__}"
        )
    tuples: list[bool] = []
    source = IterableSource(
        _predict_items(x, tuples), steps_per_epoch=steps, check_inputs=check_inputs,
        integer_ok=integer_ok,
    )  # fmt: skip
    return source, tuples == [True]  # the first batch is read on construction


@sharding.own_mesh
@host_memory.retaining
def predict(
    model: nnx.Module,
    x: Any,
    *,
    batch_size: int = 128,
    steps: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
) -> Any:
    """``model(x)`` in inference mode, computed in jitted batches; NumPy outputs ``(N, ...)``.

    Args:
      model: a Flax NNX model.
      x: an array or any pytree of ``(N, ...)`` arrays (a dict, or a tuple for
        multi-input models); or an iterable of batches, each ``x`` (an array or dict)
        or a tuple ``(x, ...)`` whose first element is the input (labels and weights
        are ignored, so a ``fit``/``evaluate`` iterable works as it is). The batches
        of an iterable keep their size; a shorter last one is padded and masked.
      batch_size: examples per compiled call, for arrays (fewer examples: rounded up to
        three significant bits, :func:`nnjax.train.size_buckets.bucket`, padded and
        masked, so calls on many sizes share a few programs).
      steps: batches to take from an endless iterable (not for arrays).
      devices: devices to shard the batches over.
      check_inputs: reject integer ``x`` other than the inputs the model declares in
        ``integer_inputs``, and inputs that hold NaN or inf (as ``fit`` and
        ``evaluate``); ``False`` turns both checks off (NaN inputs then give NaN
        outputs).

    Returns:
      The outputs for every example, in order, as NumPy (with several processes, on
      every process: the rows of every process's batches).

    Raises:
      ShapeError: inputs the model cannot take, or arrays of different lengths.
      ValueError: an empty ``x``, a nested Python list (pass ``np.asarray(x)``), a
        batch of an iterable that holds no arrays, or ``steps`` with arrays.
      ValueError: NaN or inf inputs with ``check_inputs`` (names the first example).
      TypeError: ``x`` of another kind, integer inputs with ``check_inputs``, or a
        tuple ``(x, y)`` for a model that takes one input (``predict`` takes ``x``).

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
      >>> predict(model, np.ones((5, 2)), batch_size=2).shape
      (5, 3)
      >>> predict(model, [(np.ones((4, 2)), None), (np.ones((1, 2)), None)]).shape
      (5, 3)
    """
    validation.check_flags("predict", check_inputs=check_inputs)
    batch_size = validation.check_count("batch_size", batch_size, 1)
    steps = None if steps is None else validation.check_count("steps", steps, 1)
    source, tuples = _predict_source(model, x, batch_size, steps, check_inputs)
    whole = source.x if isinstance(source, ArraySource) else None  # the user's, unpadded
    source = divisible(source, _mesh_size(devices))  # padded rows: masked copies
    mesh, graphdef, params, rest = _setup(model, source.batch_size, devices)
    example = source.example().x
    abstract_output.output_shape(
        model, graphdef, params, rest, example, name="x", whole=whole,
        tuple_batch="predict" if tuples else None,
    )  # fmt: skip
    params, rest = sharding.put_replicated((params, rest), mesh, copy=False)  # no donation
    feeder = eval_blocks.host_feeder(source, mesh)
    fn = eval_blocks.compiled_predict_blocks(graphdef, feeder.k, mesh, feeder.gather)
    with jax.set_mesh(mesh):  # its programs' context: their mesh (sharding.own_mesh)
        host = eval_blocks.block_outputs(fn, params, rest, feeder)
    return jax.tree.map(
        lambda *parts: np.concatenate(parts),
        *[jax.tree.map(lambda a, m=mask: _real_rows(a, m), out) for out, mask in host],
    )


def _real_rows(out: Any, mask: np.ndarray) -> np.ndarray:
    """A dispatch's outputs ``(n, B, ...)`` as ``(rows, ...)``: the rows whose mask is set."""
    out = np.asarray(out)
    return out.reshape(-1, *out.shape[2:])[np.asarray(mask).reshape(-1) > 0]


__all__ = [
    "divisible",
    "eval_source",
    "evaluate",
    "evaluate_source",
    "predict",
    "summarize",
]
