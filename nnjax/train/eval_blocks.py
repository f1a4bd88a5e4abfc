"""Evaluation in blocks of batches: one compiled dispatch evaluates ``k`` batches.

``evaluate`` (and ``fit``'s validation) computed one batch per dispatch, so the host's
time per call (flattening the model's state, handing each batch to the device, reading
its statistics back) came on top of every batch. Here the batches are fed as ``fit``'s
are (:class:`~nnjax.train.feeder.DeviceFeeder`: for ``fit``'s and a sweep's validation,
array data put on the device once per run and gathered there; for ``evaluate``,
``predict`` and other data, blocks stacked ``(k, B, ...)`` on the host by a background
thread, :func:`host_feeder`), the model's
state is passed as its flat arrays (as ``fit``'s dispatch,
:func:`nnjax.train.flat_dispatch.on_leaves`), and a rolled device loop fills ``(k,
...)`` statistics, of which the host keeps each block's real batches. The statistics
are still summed on the host per batch (:func:`nnjax.train.evaluate.summarize`), so
results stay exact for any batching.

Example:
  >>> import numpy as np
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> from nnjax.train import sharding, step
  >>> from nnjax.train.data import ArraySource
  >>> gd, params, rest = step.split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
  >>> src = ArraySource(np.ones((10, 2), np.float32), np.zeros((10, 1), np.float32),
  ...                   batch_size=4)
  >>> feeder = DeviceFeeder(src, sharding.make_mesh(jax.devices()[:1]), BATCHES_PER_DISPATCH)
  >>> stats = block_stats(gd, params, rest, feeder, loss="mse", metrics=())
  >>> stats[0]["loss"]["count"].tolist()  # one dispatch of 3 batches, the last padded
  [4.0, 4.0, 2.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax.functional import _conv_compiler
from nnjax.train import abstract_output, in_flight, sharding, step
from nnjax.train.compiled import TRACES, cached, gathered
from nnjax.train.dispatch_choices import inference_eigen_dots_for
from nnjax.train.feeder import DeviceFeeder, default_steps

BATCHES_PER_DISPATCH = 8
"""Batches one evaluation dispatch computes (a rolled device loop, as ``fit``'s steps).

Measured on a 2-core Intel Xeon (``benchmarks/README.md``, "Session 24"): ``evaluate``
of 8192 examples at batch 32 took 16x the time of a bare loop of the jitted forward
pass for a 64-64-10 MLP and 1.7x for a 784-500-300-100-10 MLP, one batch per dispatch.
"""


def block_feeder(source: Any, mesh: Mesh, *, on_device: bool | None = None) -> DeviceFeeder:
    """A feeder of :data:`BATCHES_PER_DISPATCH` batches a dispatch (fewer if large).

    Array data that fit stay on the device (``on_device``, default
    :func:`~nnjax.train.feeder.stays_on_device`), as for ``fit``'s validation, whose
    data are the same every epoch; other data are stacked on the host, at most
    :data:`~nnjax.train.in_flight.DISPATCH_BYTES` a dispatch
    (:func:`~nnjax.train.feeder.default_steps`).

    Example:
      >>> import numpy as np
      >>> from nnjax.train import sharding
      >>> from nnjax.train.data import ArraySource
      >>> src = ArraySource(np.ones((4, 2), np.float32), np.zeros(4, np.int32), batch_size=2)
      >>> feeder = block_feeder(src, sharding.make_mesh(jax.devices()[:1]))
      >>> feeder.gather, feeder.k
      (True, 8)
    """
    k = default_steps(BATCHES_PER_DISPATCH, source, mesh, on_device=on_device)
    return DeviceFeeder(source, mesh, k, on_device=on_device)


def host_feeder(source: Any, mesh: Mesh) -> DeviceFeeder:
    """A :func:`block_feeder` of batches stacked on the host, for one call.

    ``evaluate`` and ``predict`` feed host blocks, whose program depends only on the
    batch's shape: gathering from data put on the device (as ``fit`` and its
    validation do, where the data stay the same across epochs) would compile a program
    per size bucket of the data (:mod:`nnjax.train.size_buckets`) and copy all of
    them to the device for one pass.

    Example:
      >>> import numpy as np
      >>> from nnjax.train import sharding
      >>> from nnjax.train.data import ArraySource
      >>> src = ArraySource(np.ones((4, 2), np.float32), np.zeros(4, np.int32), batch_size=2)
      >>> host_feeder(src, sharding.make_mesh(jax.devices()[:1])).gather
      False
    """
    return block_feeder(source, mesh, on_device=False)


@cached
def compiled_eval_blocks(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None,
    metrics: tuple,
    k: int,
    mesh: Mesh,
    gather: bool,
    options: tuple = (),
) -> Callable:
    """The jitted evaluation dispatch of up to ``k`` batches; memoised on its arguments.

    ``fn(treedef, leaves, *args) -> stats``: ``leaves`` are ``(params, rest)`` flat
    (``treedef`` static), ``args`` a :class:`~nnjax.train.feeder.Chunk`'s (as
    :func:`nnjax.train.compiled.compiled_train` takes them, with ``gather``: rows of
    device-resident data; without: ``(k, B, ...)`` stacks) ending in ``n``, the real
    batches. ``stats`` are :func:`~nnjax.train.step.make_eval_step`'s with a leading
    ``k`` axis, zero past ``n``. ``options``: ``(name, value)`` pairs for
    ``make_eval_step`` (``precision``, ``loss_fn``).
    """
    eval_step = step.make_eval_step(graphdef, loss, metrics, **dict(options))
    jit = library_jit(graphdef, dict(options).get("precision"))
    return over_batches(eval_step, k, mesh, gather, jit=jit)


@cached
def compiled_predict_blocks(
    graphdef: nnx.GraphDef, k: int, mesh: Mesh, gather: bool, precision: str | None = None
) -> Callable:
    """The jitted prediction dispatch of up to ``k`` batches; memoised on its arguments.

    As :func:`compiled_eval_blocks`, returning ``(outputs, masks)``: the model's outputs
    ``(k, B, ...)`` (:func:`~nnjax.train.step.make_predict_step` at ``precision``) and
    each batch's mask ``(k, B)`` (0 for padded rows), zero past ``n``.
    """
    predict_step = step.make_predict_step(graphdef, precision)
    per_batch = lambda p, r, b: (predict_step(p, r, b.x), b.mask)
    return over_batches(per_batch, k, mesh, gather, jit=library_jit(graphdef, precision))


def library_jit(graphdef: nnx.GraphDef, precision: str | None = None) -> Callable:
    """How a forward-only dispatch of ``graphdef`` is jitted: as ``fit``'s train step.

    :func:`nnjax.functional._conv_compiler.jit` (on XLA:CPU Eigen's convolutions and
    ``fit``'s vector width; plain :func:`jax.jit` on other backends), its matmuls on Eigen
    where :func:`~nnjax.train.dispatch_choices.inference_eigen_dots_for` measured that
    faster (for the dispatch's ``precision``, ``fit``'s argument). On a 2-core Intel Xeon
    with AMX a GRU classifier's ``predict`` took 0.62-0.88x its time under plain
    ``jax.jit``, an LSTM's 0.93-0.98x (session 38; on Eigen's matmuls since session 43:
    0.72-1.00x of that), a CNN's and an MLP's the same (``benchmarks/README.md``).

    Example:
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> fn = library_jit(nnx.graphdef(MLP(2, (4,), 1, rngs=nnx.Rngs(0))))(lambda x: x + 1)
      >>> fn(jnp.ones(2)).tolist()
      [2.0, 2.0]
    """
    eigen_dots = inference_eigen_dots_for(graphdef, precision=precision)
    return functools.partial(_conv_compiler.jit, eigen_dots=eigen_dots)


def over_batches(
    per_batch: Callable, k: int, mesh: Mesh, gather: bool, jit: Callable = jax.jit
) -> Callable:
    """``per_batch(params, rest, batch)`` over a chunk's batches, in a rolled device loop.

    Returns the jitted ``fn(treedef, leaves, *chunk_args)`` of :func:`compiled_eval_blocks`
    (``leaves``: ``(params, rest)`` flat), its outputs ``per_batch``'s with a leading
    ``k`` axis, zero past the chunk's ``n`` real batches. ``jit`` compiles it
    (:func:`library_jit` for :func:`compiled_eval_blocks` and
    :func:`compiled_predict_blocks`, and a sweep's validation of members one at a time;
    :func:`jax.jit` for vmapped members).
    """

    def run(params: Any, rest: Any, get: Callable, n: Any) -> Any:
        shapes = jax.eval_shape(lambda: per_batch(params, rest, get(0)))
        outs = jax.tree.map(lambda s: jnp.zeros((k, *s.shape), s.dtype), shapes)

        def body(i, outs):
            new = per_batch(params, rest, get(i))
            return jax.tree.map(lambda buf, value: buf.at[i].set(value), outs, new)

        return jax.lax.fori_loop(0, n, body, outs)

    def from_device_data(treedef, leaves, data, idx, mask, j, n):
        TRACES.hit()
        params, rest = jax.tree.unflatten(treedef, leaves)
        idx, mask = idx[j], mask[j]
        return run(params, rest, lambda i: gathered(data, idx, mask, i, mesh), n)

    def from_batches(treedef, leaves, batches, n):
        TRACES.hit()
        params, rest = jax.tree.unflatten(treedef, leaves)
        return run(params, rest, lambda i: jax.tree.map(lambda a: a[i], batches), n)

    return jit(from_device_data if gather else from_batches, static_argnums=0)


def loss_fn_log_names(
    graphdef: nnx.GraphDef, options: tuple, params: Any, rest: Any, source: Any
) -> tuple[str, ...]:
    """The names a ``loss_fn`` logs on ``source``'s batches (no compile: a trace, kept).

    ``graphdef`` in inference mode; ``options`` the ``(name, value)`` pairs of
    :func:`~nnjax.train.step.make_eval_step` (``loss_fn``, ``precision``; others are
    ignored). The trace of the evaluation step on the first batch's shapes is kept per
    step and shapes (as ``fit``'s check of the training step's logs).

    Example:
      >>> import numpy as np
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.data import ArraySource
      >>> gd, params, rest = step.split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)), training=False)
      >>> src = ArraySource(np.ones((3, 2), np.float32), np.zeros((3, 1), np.float32),
      ...                   batch_size=2)
      >>> loss_fn = lambda model, batch: (0.0, {"b": jnp.sum(batch.mask)})
      >>> loss_fn_log_names(gd, (("loss_fn", loss_fn),), params, rest, src)
      ('b',)
    """
    named = dict(options)
    eval_args = (graphdef, named["loss_fn"], named.get("precision"))
    example = jax.tree.map(jnp.asarray, source.example())
    return _log_names(eval_args, *abstract_output.abstract((params, rest, example)))


@cached
def _log_names(eval_args: tuple, treedef: Any, avals: tuple) -> tuple[str, ...]:
    graphdef, loss_fn, precision = eval_args
    eval_step = step.make_eval_step(graphdef, None, loss_fn=loss_fn, precision=precision)
    params, rest, example = jax.tree.unflatten(treedef, avals)
    return tuple(jax.eval_shape(eval_step, params, rest, example)["logs"])


def block_stats(
    graphdef: nnx.GraphDef,
    params: Any,
    rest: Any,
    feeder: DeviceFeeder,
    *,
    loss: Any,
    metrics: tuple,
    options: tuple = (),
) -> list[dict]:
    """Every dispatch's host statistics over ``feeder``'s source, in order.

    Each has a leading axis of the dispatch's real batches (sum it, as
    ``nnjax.metrics.accumulate(..., stacked=True)`` does). ``params`` and ``rest`` are on
    the feeder's mesh; each dispatch evaluates up to ``feeder.k`` batches
    (:func:`compiled_eval_blocks`).
    """
    fn = compiled_eval_blocks(graphdef, loss, metrics, feeder.k, feeder.mesh, feeder.gather,
                              options)  # fmt: skip
    return block_outputs(fn, params, rest, feeder)


def block_outputs(fn: Callable, params: Any, rest: Any, feeder: DeviceFeeder) -> list:
    """``fn``'s host outputs over ``feeder``'s source, in order: one per dispatch.

    ``fn`` is a dispatch of :func:`compiled_eval_blocks`, :func:`compiled_predict_blocks`
    or :func:`over_batches`: its outputs carry a leading axis of ``feeder.k`` batches,
    cut here to the dispatch's real ones.
    """
    leaves, treedef = jax.tree.flatten((params, rest))
    steps: list[int] = []  # each dispatch's real batches, as the feeder hands them over

    def dispatches():
        for chunk in feeder.epoch(0, 0, shuffle=False):
            steps.append(chunk.steps)
            yield fn(treedef, leaves, *chunk.args)

    host = sharding.to_host(in_flight.collect(dispatches(), feeder.depth))
    return [jax.tree.map(lambda a, n=n: a[:n], block) for block, n in zip(host, steps, strict=True)]


__all__ = [
    "BATCHES_PER_DISPATCH",
    "DeviceFeeder",
    "block_feeder",
    "block_outputs",
    "block_stats",
    "compiled_eval_blocks",
    "compiled_predict_blocks",
    "host_feeder",
    "library_jit",
    "loss_fn_log_names",
    "over_batches",
]
