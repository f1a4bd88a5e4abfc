"""The compiled step: ``K`` pure updates per dispatch, jitted, donating and sharded.

One dispatch runs up to ``K`` updates in a device loop (:func:`loop_steps`); the number
of real steps ``n`` is an argument, so the epoch's last, shorter chunk reuses the same
program (no second compile, no stall). How many updates a dispatch runs
(:func:`steps_per_dispatch_for`), whether it donates its state (:func:`donate_for`) and
which library runs its matmuls (:func:`eigen_dots_for`) depend on the model's layers
and the backend; :mod:`nnjax.train.dispatch_choices` holds these choices and their
measurements (re-exported here).

Example:
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> steps_per_dispatch_for(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
  8
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax.functional import _conv_compiler
from nnjax.train import loss_weights, sharding
from nnjax.train.data import Batch
from nnjax.train.dispatch_choices import (
    DEFAULT_STEPS_PER_DISPATCH,
    donate_for,
    eigen_dots_for,
    steps_per_dispatch_for,
)
from nnjax.train.flat_dispatch import on_leaves
from nnjax.train.step import TrainStep, make_train_step

PyTree = Any


class TraceCounter:
    """Counts traces of the train dispatch.

    ``listener()`` runs at each (``fit`` uses it to say "compiling..." before the compile
    starts).

    Example:
      >>> counter = TraceCounter()
      >>> counter.hit(); counter.count
      1
    """

    def __init__(self) -> None:
        self.count = 0
        self.listener: Callable[[], None] | None = None

    def hit(self) -> None:
        """Records one trace."""
        self.count += 1
        if self.listener is not None:
            self.listener()


TRACES = TraceCounter()
"""Traces of every :func:`compiled_train` dispatch (tests check it does not move)."""


MEMOS: list[Any] = []
"""Every :func:`cached` builder's memo (``functools.lru_cache``), for ``clear_caches``."""


def cached(builder: Callable) -> Callable:
    """Memoises a builder (of jitted functions, of traces) on hashable arguments.

    So repeated ``fit``/``evaluate`` calls with the same model graph reuse one compiled
    function. Arguments that cannot be hashed (a graph with a dict among its static
    attributes) are built afresh each time; an error of the builder itself is raised
    as it is.

    Example:
      >>> square = cached(lambda n: n * n)
      >>> square(3)
      9
      >>> cached(len)([1, 2])  # a list cannot be hashed: built afresh
      2
    """
    memo = functools.lru_cache(maxsize=64)(builder)
    MEMOS.append(memo)

    @functools.wraps(builder)
    def get(*args):
        try:
            hash(args)
        except TypeError:  # an unhashable argument: build afresh
            return builder(*args)
        return memo(*args)

    return get


def _donated(graphdef: nnx.GraphDef) -> tuple[int, ...]:
    return (0, 1, 2) if donate_for(graphdef) else ()


def _donated_leaves(graphdef: nnx.GraphDef) -> tuple[int, ...]:
    """The donated argument of an ``on_leaves`` dispatch: every array of the state."""
    return (1,) if donate_for(graphdef) else ()


def scan_steps(step: TrainStep, *, unroll: int | bool = True) -> TrainStep:
    """Turns a one-batch ``step`` into one over a stack of batches, with :func:`jax.lax.scan`.

    The returned ``steps(params, opt_state, rest, xs, ys)`` takes ``xs (K, B, ...)`` and
    ``ys (K, B, ...)`` and runs ``K`` updates in order; its logs are stacked ``(K,)``.
    ``unroll`` is passed to ``lax.scan`` (all ``K`` steps by default; ``1``, a rolled
    loop, compiles in one step's time and measured as fast for dense and recurrent
    models, but XLA:CPU differentiates its convolution slowly inside one).

    Args:
      step: ``step(params, opt_state, rest, x, y) -> (params, opt_state, rest, logs)``
        (:func:`make_train_step`).
      unroll: ``lax.scan``'s ``unroll`` (``True``: all ``K`` steps).

    Returns:
      ``steps(params, opt_state, rest, xs, ys)`` with the same outputs as ``step``, its
      logs stacked ``(K, ...)``.

    Example:
      >>> import optax
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import split_model
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> steps = scan_steps(make_train_step(gd, "mse", optax.sgd(0.1)))
      >>> xs, ys = jnp.ones((5, 3, 2)), jnp.zeros((5, 3, 1))
      >>> steps(params, optax.sgd(0.1).init(params), rest, xs, ys)[3]["loss"].shape
      (5,)
    """

    def steps(params: PyTree, opt_state: PyTree, rest: PyTree, *batches: Any):
        def body(carry, batch):
            params, opt_state, rest, logs = step(*carry, *batch)
            return (params, opt_state, rest), logs

        carry = (params, opt_state, rest)
        (params, opt_state, rest), logs = jax.lax.scan(body, carry, batches, unroll=unroll)
        return params, opt_state, rest, logs

    return steps


def loop_steps(step: TrainStep, k: int) -> Callable:
    """``run(params, opt_state, rest, get, n)``: ``step`` on ``get(i)`` for ``i < n <= k``.

    A rolled device loop (``lax.fori_loop``) for ``k > 1``; logs are stacked ``(k, ...)``
    and zero past ``n``. ``n`` is traced, so a shorter last chunk reuses the program.

    Args:
      step: a train step taking a batch, ``step(params, opt_state, rest, batch)``.
      k: the most steps per call (the loop's static length).

    Returns:
      ``run(params, opt_state, rest, get, n)``, returning ``(params, opt_state, rest,
      logs)`` with ``logs`` stacked ``(k, ...)``.

    Example:
      >>> import optax
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import as_batch, split_model
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> run = loop_steps(make_train_step(gd, "mse", optax.sgd(0.1)), 3)
      >>> get = lambda i: as_batch(jnp.ones((2, 2)), jnp.zeros((2, 1)))
      >>> run(params, optax.sgd(0.1).init(params), rest, get, 2)[3]["count"].tolist()
      [2.0, 2.0, 0.0]
    """

    def run(params: PyTree, opt_state: PyTree, rest: PyTree, get: Callable, n: Any):
        if k == 1:
            params, opt_state, rest, logs = step(params, opt_state, rest, get(0))
            return params, opt_state, rest, jax.tree.map(lambda a: a[None], logs)
        shapes = jax.eval_shape(lambda: step(params, opt_state, rest, get(0))[3])
        logs = jax.tree.map(lambda s: jnp.zeros((k, *s.shape), s.dtype), shapes)

        def body(i, carry):
            params, opt_state, rest, logs = carry
            params, opt_state, rest, out = step(params, opt_state, rest, get(i))
            logs = jax.tree.map(lambda buf, value: buf.at[i].set(value), logs, out)
            return params, opt_state, rest, logs

        return jax.lax.fori_loop(0, n, body, (params, opt_state, rest, logs))

    return run


def _constrain(batch: Any, mesh: Mesh | None) -> Any:
    if mesh is None or mesh.size == 1:
        return batch
    return jax.lax.with_sharding_constraint(batch, sharding.batch_sharding(mesh, 0))


def gathered(data: tuple, idx: jax.Array, mask: jax.Array, i: Any, mesh: Mesh | None) -> Batch:
    """The :class:`Batch` of rows ``idx[i]`` of device-resident ``data = (x, y, weight)``.

    Example:
      >>> mesh = sharding.make_mesh(jax.devices()[:1])
      >>> data = (jnp.arange(4.0)[:, None], jnp.zeros(4), jnp.ones(4))
      >>> gathered(data, jnp.array([[3, 1]]), jnp.ones((1, 2)), 0, mesh).x[:, 0].tolist()
      [3.0, 1.0]
    """
    rows, m = idx[i], mask[i]
    x, y, weight = jax.tree.map(lambda a: jnp.take(a, rows, axis=0), data)
    return _constrain(Batch(x, y, loss_weights.masked(weight, m), m), mesh)


def step_eigen_dots(graphdef: nnx.GraphDef, options: tuple) -> bool:
    """:func:`eigen_dots_for` a train step of ``options`` (``make_train_step``'s).

    Example:
      >>> from nnjax.nn import MLP
      >>> graphdef = nnx.graphdef(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> step_eigen_dots(graphdef, (("precision", None),))
      False
    """
    return eigen_dots_for(graphdef, None, dict(options).get("precision"))


@cached
def compiled_train(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss | None,
    tx: optax.GradientTransformation,
    metrics: tuple,
    k: int,
    mesh: Mesh,
    gather: bool,
    options: tuple = (),
) -> Callable:
    """The jitted train dispatch (donating per :func:`donate_for`); memoised on its arguments.

    It takes and returns the ``TrainState`` flat (:func:`nnjax.train.flat_dispatch.on_leaves`):
    ``fn(treedef, leaves, *args) -> (leaves, logs)``. With ``gather`` the ``args`` are
    ``(data, idx (D, K, B), mask (D, K, B), j, n)``: each batch of block ``j`` is
    gathered from device-resident ``data = (x, y, weight)`` (the epoch's blocks,
    :func:`nnjax.train.feeder.in_blocks`; ``data``'s rows and ``D`` padded to a size
    bucket, :mod:`nnjax.train.size_buckets`, so one program serves many dataset
    sizes); otherwise ``(batches, n)``, a :class:`Batch`
    of ``(K, B, ...)`` stacks. ``options`` holds ``(name, value)`` pairs for :func:`make_train_step`
    (``loss_fn``, ``precision``, ``remat``).

    Example:
      >>> import optax
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import split_model
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> mesh = sharding.make_mesh(jax.devices()[:1])
      >>> tx = optax.sgd(0.1)
      >>> fn = compiled_train(gd, "mse", tx, (), 8, mesh, False)
      >>> fn is compiled_train(gd, "mse", tx, (), 8, mesh, False)
      True
      >>> from nnjax.train.state import TrainState
      >>> state = TrainState(params, tx.init(params), rest)
      >>> leaves, treedef = jax.tree.flatten(state)
      >>> ones = jnp.ones((8, 3))
      >>> batches = Batch(jnp.ones((8, 3, 2)), jnp.zeros((8, 3, 1)), ones, ones)
      >>> leaves, logs = fn(treedef, leaves, batches, 8)
      >>> logs["loss"].shape
      (8,)
    """
    step = make_train_step(graphdef, loss, tx, metrics, **dict(options))
    run = loop_steps(step, k)

    def from_device_data(params, opt_state, rest, data, idx, mask, j, n):
        TRACES.hit()
        idx, mask = idx[j], mask[j]
        get = lambda i: gathered(data, idx, mask, i, mesh)
        return run(params, opt_state, rest, get, n)

    def from_batches(params, opt_state, rest, batches, n):
        TRACES.hit()
        get = lambda i: jax.tree.map(lambda a: a[i], batches)
        return run(params, opt_state, rest, get, n)

    fn = on_leaves(from_device_data if gather else from_batches)
    # XLA:CPU: convolutions (and an LSTM's matmuls) on Eigen rather than YNNPACK, per
    # program (_conv_compiler)
    eigen_dots = step_eigen_dots(graphdef, options)
    return _conv_compiler.jit(
        fn, static_argnums=0, donate_argnums=_donated_leaves(graphdef), eigen_dots=eigen_dots
    )


def jit_train_step(
    graphdef: nnx.GraphDef,
    loss: str | losses.Loss,
    tx: optax.GradientTransformation,
    metrics: Any = (),
    *,
    scan: bool = False,
) -> TrainStep:
    """:func:`make_train_step` under :func:`jax.jit`, donating state per :func:`donate_for`.

    With ``scan=True`` the step runs over a stack of batches (:func:`scan_steps`).

    Args:
      graphdef: from :func:`~nnjax.train.step.split_model` (training mode).
      loss: a loss name or callable ``loss(predictions, y)``.
      tx: the Optax transformation; ``opt_state = tx.init(params)``.
      metrics: metric specs (:func:`nnjax.metrics.resolve`).
      scan: step over a stack of ``K`` batches (leading axis) in one call.

    Returns:
      The jitted ``step(params, opt_state, rest, x, y) -> (params, opt_state, rest,
      logs)`` of :func:`~nnjax.train.step.make_train_step`; the state arguments are
      donated where :func:`donate_for` says (do not reuse them after the call).

    Example:
      >>> import optax
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.step import split_model
      >>> gd, params, rest = split_model(MLP(2, (4,), 1, rngs=nnx.Rngs(0)))
      >>> step = jit_train_step(gd, "mse", optax.sgd(0.1))
      >>> params, opt_state, rest, logs = step(params, optax.sgd(0.1).init(params), rest,
      ...                                      jnp.ones((3, 2)), jnp.zeros((3, 1)))
      >>> logs["loss"].shape, float(logs["count"]), params["layers"][0]["kernel"].shape
      ((), 3.0, (2, 4))
    """
    step = make_train_step(graphdef, loss, tx, metrics)
    return jax.jit(scan_steps(step) if scan else step, donate_argnums=_donated(graphdef))


__all__ = [
    "DEFAULT_STEPS_PER_DISPATCH",
    "TRACES",
    "TraceCounter",
    "cached",
    "compiled_train",
    "donate_for",
    "gathered",
    "jit_train_step",
    "loop_steps",
    "scan_steps",
    "step_eigen_dots",
    "steps_per_dispatch_for",
]
