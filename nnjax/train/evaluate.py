"""Jitted evaluation and prediction over padded, masked batches that cover every example."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax.train import sharding, step, validation
from nnjax.train.state import padded_batches


def cached(builder: Callable) -> Callable:
    """Memoises a builder of jitted functions on hashable arguments, so repeated
    ``fit``/``evaluate`` calls with the same model graph reuse one compiled function."""
    memo = functools.lru_cache(maxsize=64)(builder)

    @functools.wraps(builder)
    def get(*args):
        try:
            return memo(*args)
        except TypeError:  # an unhashable loss or metric: build afresh
            return builder(*args)

    return get


@cached
def compiled_eval(graphdef: nnx.GraphDef, loss: Any, metrics: tuple) -> Callable:
    """``jax.jit`` of :func:`nnjax.train.step.make_eval_step`, memoised."""
    return jax.jit(step.make_eval_step(graphdef, loss, metrics))


@cached
def compiled_predict(graphdef: nnx.GraphDef) -> Callable:
    """``jax.jit`` of :func:`nnjax.train.step.make_predict_step`, memoised."""
    return jax.jit(step.make_predict_step(graphdef))


def evaluate_arrays(
    graphdef: nnx.GraphDef,
    params: Any,
    rest: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    loss: Any,
    metrics: tuple,
    batch_size: int,
    mesh: Mesh,
) -> dict[str, float]:
    """Mean loss and metrics over all of ``(x, y)`` for split state on ``mesh``.

    ``batch_size`` must be a multiple of the mesh size; the last batch is padded and
    masked, so every example counts exactly once.
    """
    eval_step = compiled_eval(graphdef, loss, metrics)
    sums = None
    for idx, mask in padded_batches(len(x), batch_size):
        batch = sharding.put_batch((x[idx], y[idx], mask), mesh, batch_axis=0)
        out = eval_step(params, rest, *batch)
        sums = out if sums is None else jax.tree.map(lambda a, b: a + b, sums, out)
    sums = jax.device_get(sums)
    count = sums.pop("count")
    return {name: float(value / count) for name, value in sums.items()}


def _setup(model, x, batch_size, devices):
    mesh = sharding.make_mesh(sharding.choose_devices(batch_size, devices))
    graphdef, params, rest = step.split_model(model, training=False)
    out = validation.output_shape(model, graphdef, params, rest, x)
    return mesh, graphdef, sharding.put_replicated((params, rest), mesh), out


def evaluate(
    model: nnx.Module,
    data: tuple[Any, Any],
    *,
    loss: str | losses.Loss,
    metrics: Sequence[step.MetricSpec] = ("accuracy",),
    batch_size: int = 128,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
) -> dict[str, float]:
    """Loss and metrics of ``model`` (in inference mode) over every example of ``data``.

    Args:
      model: a Flax NNX model.
      data: ``(x, y)`` arrays, ``x (N, ...)`` floating, ``y (N, ...)``.
      loss: a loss name or callable ``loss(logits, y)``.
      metrics: metric names or callables.
      batch_size: examples per compiled call (the last batch is padded and masked).
      devices: devices to shard the batches over (see :func:`~nnjax.train.sharding.choose_devices`).
      check_inputs: reject integer ``x`` (see :func:`~nnjax.train.validation.check_dataset`).

    Returns:
      ``{"loss": ..., "<metric>": ...}``: means over the examples, as floats.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (4,), 3, rngs=nnx.Rngs(0))
      >>> logs = evaluate(model, (np.ones((5, 2)), np.zeros(5, int)), loss="cross_entropy")
      >>> sorted(logs)
      ['accuracy', 'loss']
    """
    x, y = validation.check_dataset("data", data, check_inputs=check_inputs)
    batch_size = min(batch_size, len(x))
    mesh, graphdef, (params, rest), out = _setup(model, x, batch_size, devices)
    validation.check_labels(out, y, "data")
    validation.check_loss_accepts(loss, out, y, "data")
    batch_size = -(-batch_size // mesh.size) * mesh.size
    return evaluate_arrays(
        graphdef,
        params,
        rest,
        x,
        y,
        loss=loss,
        metrics=tuple(metrics),
        batch_size=batch_size,
        mesh=mesh,
    )


def predict(
    model: nnx.Module,
    x: Any,
    *,
    batch_size: int = 128,
    devices: Sequence[jax.Device] | None = None,
    check_inputs: bool = True,
) -> np.ndarray:
    """``model(x)`` in inference mode, computed in jitted batches; ``(N, ...)`` NumPy outputs.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> predict(MLP(2, (4,), 3, rngs=nnx.Rngs(0)), np.ones((5, 2)), batch_size=2).shape
      (5, 3)
    """
    x, _ = validation.check_dataset(
        "x", (x, np.zeros(len(np.asarray(x)))), check_inputs=check_inputs
    )
    batch_size = min(batch_size, len(x))
    mesh, graphdef, (params, rest), _ = _setup(model, x, batch_size, devices)
    predict_step = compiled_predict(graphdef)
    outputs = []
    for idx, mask in padded_batches(len(x), batch_size):
        xb = sharding.put_batch(x[idx], mesh, batch_axis=0)
        outputs.append((predict_step(params, rest, xb), int(mask.sum())))
    return np.concatenate([np.asarray(out)[:keep] for out, keep in outputs])


__all__ = ["compiled_eval", "compiled_predict", "evaluate", "evaluate_arrays", "predict"]
