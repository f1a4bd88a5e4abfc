"""Evaluation and prediction over whole, padded and masked batches.

The loss and every metric are accumulated from sufficient statistics of whole batches
(:class:`nnjax.metrics.Metric`), so the result does not depend on the batch size, the
padding of the last batch or the number of devices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax import metrics as metrics_lib
from nnjax.train import sharding, step, validation
from nnjax.train.compiled import cached
from nnjax.train.data import ArraySource, make_source
from nnjax.train.feeder import Prefetcher

_LOSS = metrics_lib.Metric("loss", lambda *a: {}, lambda s: float(s["sum"] / max(s["count"], 1)))


@cached
def compiled_eval(
    graphdef: nnx.GraphDef,
    loss: Any,
    metrics: tuple,
    precision: Any = None,
    loss_fn: Callable | None = None,
):
    """``jax.jit`` of :func:`nnjax.train.step.make_eval_step`, memoised.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd = step.graphdef_for(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
      >>> compiled_eval(gd, "mse", ()) is compiled_eval(gd, "mse", ())
      True
    """
    return jax.jit(
        step.make_eval_step(graphdef, loss, metrics, precision=precision, loss_fn=loss_fn)
    )


@cached
def compiled_predict(graphdef: nnx.GraphDef) -> Callable:
    """``jax.jit`` of :func:`nnjax.train.step.make_predict_step`, memoised.

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> gd = step.graphdef_for(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
      >>> compiled_predict(gd) is compiled_predict(gd)
      True
    """
    return jax.jit(step.make_predict_step(graphdef))


def summarize(metrics: Sequence[metrics_lib.Metric], stats: list[dict]) -> dict[str, float]:
    """``{"loss": ..., name: ...}`` from the host statistics of every batch.

    Example:
      >>> acc = metrics_lib.resolve("accuracy")
      >>> summarize([acc], [{"loss": {"sum": 2.0, "count": 4.0},
      ...                    "accuracy": {"correct": 3.0, "count": 4.0}}])
      {'loss': 0.5, 'accuracy': 0.75}
    """
    out = {}
    for metric in (_LOSS, *metrics):
        total = metrics_lib.accumulate(metric, [s[metric.name] for s in stats])
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
) -> dict[str, float]:
    """Mean loss and exact metrics over every example of ``source`` (in order).

    ``params`` and ``rest`` are on ``mesh``; each batch is sharded over it (the source's
    batch size must be a multiple of the mesh size).
    """
    eval_step = compiled_eval(graphdef, loss, metrics, precision, loss_fn)
    put = lambda batch: sharding.put_batch(batch, mesh, batch_axis=0)
    outs = [
        eval_step(params, rest, b) for b in Prefetcher(source.batches(0, 0, shuffle=False), put)
    ]
    return summarize(step.resolve_metrics(metrics), jax.device_get(outs))


def eval_source(name: str, data: Any, batch_size: int, mesh_size: int, **kw: Any) -> Any:
    """A source of ``data`` whose batch size is a multiple of ``mesh_size``.

    Example:
      >>> eval_source("x", (np.ones((5, 2)), np.ones(5)), 3, 4).batch_size
      4
    """
    source = make_source(name, data, batch_size=batch_size, **kw)
    if isinstance(source, ArraySource) and source.batch_size % mesh_size:
        size = -(-source.batch_size // mesh_size) * mesh_size
        source = ArraySource(source.x, source.y, batch_size=size, weight=source.weight)
    return source


def _setup(model, batch_size, devices):
    mesh = sharding.make_mesh(sharding.choose_devices(batch_size, devices))
    graphdef, params, rest = step.split_model(model, training=False)
    return mesh, graphdef, params, rest


def evaluate(
    model: nnx.Module,
    data: Any,
    *,
    loss: str | losses.Loss,
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
      loss: a loss name or callable ``loss(predictions, y)``.
      metrics: metric specs; ``None`` follows the loss (accuracy for classification).
      batch_size: examples per compiled call (the last batch is padded and masked).
      steps: batches to take from an endless iterable.
      precision: ``"bfloat16"`` to compute in bfloat16.
      devices: devices to shard the batches over.
      check_inputs: reject integer ``x`` (see :func:`~nnjax.train.validation.check_inputs_ok`).

    Returns:
      ``{"loss": ..., "<metric>": ...}`` as floats, exact for any batching.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
      >>> logs = evaluate(model, (np.ones((5, 2)), np.zeros(5, int)), loss="cross_entropy")
      >>> sorted(logs)
      ['accuracy', 'loss']
    """
    metrics = (
        metrics_lib.default_metrics(loss) if metrics is None else metrics_lib.as_specs(metrics)
    )
    step.resolve_metrics(metrics)
    source = eval_source(
        "data",
        data,
        batch_size,
        len(devices) if devices else 1,
        steps_per_epoch=steps,
        check_inputs=check_inputs,
    )
    mesh, graphdef, params, rest = _setup(model, source.batch_size, devices)
    example = source.example()
    out = validation.output_shape(model, graphdef, params, rest, example.x)
    validation.check_labels(out, example.y, "data")
    if isinstance(source, ArraySource):
        validation.check_labels(out, source.y, "data")
    validation.check_loss_accepts(loss, out, example.y, "data")
    params, rest = sharding.put_replicated((params, rest), mesh)
    return evaluate_source(
        graphdef, params, rest, source, loss=loss, metrics=metrics, mesh=mesh, precision=precision
    )


def predict(
    model: nnx.Module,
    x: Any,
    *,
    batch_size: int = 128,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
) -> Any:
    """``model(x)`` in inference mode, computed in jitted batches; NumPy outputs ``(N, ...)``.

    ``x`` is any pytree of ``(N, ...)`` arrays (a dict or tuple for multi-input models).

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> predict(MLP(2, (4,), 3, rngs=nnx.Rngs(0)), np.ones((5, 2)), batch_size=2).shape
      (5, 3)
    """
    x = validation.host_tree("x", x)
    n = validation.check_lengths("x", {"x": x})
    validation.check_inputs_ok("x", x, check_inputs=check_inputs, nan=False)
    source = ArraySource(x, np.zeros(n, np.float32), batch_size=min(batch_size, n))
    mesh, graphdef, params, rest = _setup(model, source.batch_size, devices)
    validation.output_shape(model, graphdef, params, rest, x)
    params, rest = sharding.put_replicated((params, rest), mesh)
    predict_step = compiled_predict(graphdef)
    outputs = []
    for batch in source.batches(0, 0, shuffle=False):
        xb = sharding.put_batch(batch.x, mesh, batch_axis=0)
        outputs.append((predict_step(params, rest, xb), int(batch.mask.sum())))
    host = jax.device_get(outputs)
    return jax.tree.map(
        lambda *parts: np.concatenate(parts),
        *[jax.tree.map(lambda a, keep=keep: np.asarray(a)[:keep], out) for out, keep in host],
    )


__all__ = [
    "compiled_eval",
    "compiled_predict",
    "eval_source",
    "evaluate",
    "evaluate_source",
    "predict",
    "summarize",
]
