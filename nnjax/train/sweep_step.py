"""The compiled parts of a sweep: ``M`` stacked members through the engine's epoch loop.

:class:`SweepState` is the run's state (every leaf stacked on a leading axis ``M``,
plus each member's ``active`` flag); :func:`compiled_sweep_train` is the dispatch: one
``jax.vmap`` of ``fit``'s own step and device loop, whose result is kept only for
active members (a stopped member's state does not move, inside the compiled step).
:class:`~nnjax.train.sweep_feeder.SweepFeeder` hands the engine each dispatch's
per-member batches (member ``i`` sees exactly what ``fit(..., seed=seeds[i])`` sees),
split over the devices of every process; :func:`make_sweep_logs` turns the host
outputs into per-member logs ``name -> (M,)`` (NaN for stopped members).

Example:
  >>> state = SweepState({}, (), {}, np.ones(2, np.float32))
  >>> state._fields
  ('params', 'opt_state', 'rest', 'active')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from nnjax import metrics as metrics_lib
from nnjax.functional import _conv_compiler
from nnjax.train import eval_blocks, loss_scale, optimizers, sharding, step
from nnjax.train._sweep_groups import SweepHistory
from nnjax.train.compiled import TRACES, cached, gathered, loop_steps, step_eigen_dots
from nnjax.train.engine import epoch_logs
from nnjax.train.evaluate import summarize
from nnjax.train.flat_dispatch import on_leaves
from nnjax.train.members import (
    CPU_VMAP_MAX_PARAMS,
    auto_eval_per_step,
    auto_per_step,
    over_members,
)
from nnjax.train.sweep_feeder import SweepFeeder

PyTree = Any


class SweepState(NamedTuple):
    """The state of ``M`` stacked members: leaves ``(M, ...)``; ``active (M,)`` float 0/1."""

    params: Any
    opt_state: Any
    rest: Any
    active: Any


def stack(trees: Sequence[PyTree]) -> PyTree:
    """Stacks pytrees of one structure on a new leading axis.

    Example:
      >>> stack([{"w": np.zeros(2)}, {"w": np.ones(2)}])["w"].shape
      (2, 2)
    """
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def take(tree: PyTree, i: Any) -> PyTree:
    """Member(s) ``i`` of a stacked pytree (an int or an index array).

    Example:
      >>> take({"w": np.arange(6).reshape(3, 2)}, 1)["w"].tolist()
      [2, 3]
    """
    return jax.tree.map(lambda a: a[i], tree)


def init_opt_states(
    factory: Callable, params: PyTree, values: Mapping[str, Sequence[Any]]
) -> PyTree:
    """Stacked ``optax.inject_hyperparams(factory)(**values_i).init(params_i)`` of ``M`` members.

    One compiled ``jax.vmap`` over the members (memoised per ``factory`` and the names):
    run eagerly, Optax builds every leaf's state of every member in its own dispatch. A
    ``factory`` whose ``init`` reads its hyperparameters' values runs eagerly per member.

    Args:
      factory: an Optax optimizer factory.
      params: the members' parameters, leaves ``(M, ...)``.
      values: ``name -> M`` numbers: member ``i``'s injected hyperparameters.

    Example:
      >>> s = init_opt_states(optax.sgd, {"w": np.ones((2, 3))}, {"learning_rate": [0.1, 0.2]})
      >>> [round(float(v), 6) for v in optimizers.hyperparameters(s)["learning_rate"]]
      [0.1, 0.2]
    """
    names = tuple(values)
    # a whole-number learning rate as a float, as fit's: an int32 state truncated every
    # later rate (a schedule's lr * 0.5 of 1 gave 0); other integers stay (exponents)
    rate = values.get("learning_rate")
    if rate is not None:
        values = {**values, "learning_rate": [float(v) for v in rate]}
    try:
        hp = {n: jnp.asarray(np.asarray(values[n])) for n in names}
        return _vmapped_init(factory, names)(params, hp)
    except optimizers.NEEDS_VALUES:  # an ``init`` that reads its hyperparameters' values
        pass
    m = len(jax.tree.leaves(params)[0])
    txs = [optax.inject_hyperparams(factory)(**{n: values[n][j] for n in names}) for j in range(m)]
    return stack([tx.init(take(params, j)) for j, tx in enumerate(txs)])


@cached
def _vmapped_init(factory: Callable, names: tuple[str, ...]) -> Callable:
    del names  # the memo's key: the traced ``hp`` has them

    def one(params: PyTree, hp: dict[str, jax.Array]) -> PyTree:
        return optax.inject_hyperparams(factory)(**hp).init(params)

    return jax.jit(jax.vmap(one))


@cached
def _select() -> Callable:
    def select(keep: jax.Array, new: PyTree, old: PyTree) -> PyTree:
        def pick(a, b):
            return jnp.where(keep.reshape(keep.shape + (1,) * (a.ndim - 1)).astype(bool), a, b)

        return jax.tree.map(pick, new, old)

    return jax.jit(select)


def select(keep: Any, new: PyTree, old: PyTree) -> PyTree:
    """Per member: ``new`` where ``keep (M,)`` is true, else ``old`` (a new copy).

    Example:
      >>> select(np.array([1, 0]), {"w": np.ones(2)}, {"w": np.zeros(2)})["w"].tolist()
      [1.0, 0.0]
    """
    return _select()(np.asarray(keep), new, old)


@cached
def compiled_sweep_train(
    graphdef: nnx.GraphDef,
    loss: Any,
    factory: Callable,
    names: tuple[str, ...],
    metrics: tuple,
    k: int,
    mode: str,
    options: tuple = (),
    per_step: int | None = None,
    mesh: Mesh | None = None,
) -> Callable:
    """The jitted, donating sweep dispatch; memoised on its (hashable) arguments.

    It takes and returns the :class:`SweepState` flat, as ``fit``'s dispatch
    (:func:`nnjax.train.flat_dispatch.on_leaves`): ``fn(treedef, leaves, *args) -> (leaves,
    logs)``, the ``args`` per mode below, after the state's four fields. ``mode`` is the
    :class:`~nnjax.train.sweep_feeder.SweepFeeder`'s: ``"gather"``:
    ``fn(params, opt_state, rest, active, data, idx, mask, j, n)`` with ``idx``/``mask``
    the epoch's ``(M, D, K, B)`` row indices into device-resident ``data`` and masks,
    of which the dispatch takes block ``j``; ``"members"``:
    ``fn(params, opt_state, rest, active, batches, n)`` with a ``Batch`` of every
    member's ``(M, K, B, ...)`` stacks; ``"shared"``: the same with one ``(K, B, ...)``
    stack shared by every member. Each member runs ``fit``'s step
    (:func:`nnjax.train.step.make_train_step` under ``optax.inject_hyperparams``, its
    values read from the member's optimizer state) in ``fit``'s device loop; members
    with ``active == 0`` keep their state. A member whose dispatch gives a NaN or
    infinite loss or parameter (where ``fit`` raises
    :class:`~nnjax.train.engine.NonFiniteLossError`) diverged: it keeps the state it had
    before the dispatch and its ``active`` becomes 0, the others go on. ``per_step``
    members are computed together (``jax.vmap``) and the groups of them one after
    another in a device loop (``lax.map``); ``None``: all at once, ``1``: one member
    at a time (unbatched matrix products, as ``fit``'s own program). Batches are split
    over ``mesh``'s ``'data'`` axis (its devices may span several processes); the state
    and the logs come out replicated on it, so every process reads the same logs.
    Compiled as ``fit``'s step where :func:`library_compiled` (its matmul library chosen
    as ``fit``'s, by model and precision), else by :func:`jax.jit`.
    """
    # Placeholder values: inject_hyperparams reads every member's values from its state.
    tx = optax.inject_hyperparams(factory)(**dict.fromkeys(names, 0.0))
    steps = loop_steps(step.make_train_step(graphdef, loss, tx, metrics, **dict(options)), k)
    spread = mesh is not None and mesh.size > 1

    def member(params, opt_state, rest, active, get, n):
        new = steps(params, opt_state, rest, get, n)
        finite = finite_update(new[3]["loss"], new[0])
        keep = (active > 0) & finite  # a diverged member keeps its state and stops
        kept = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new[:3], (params, opt_state, rest))
        return (*kept, jnp.where(finite, active, jnp.zeros_like(active)), new[3])

    def replicated(out):
        return jax.lax.with_sharding_constraint(out, sharding.replicated(mesh)) if spread else out

    def from_device_data(params, opt_state, rest, active, data, idx, mask, j, n):
        TRACES.hit()
        idx, mask = idx[:, j], mask[:, j]  # every member's block j: (M, K, B)

        def one(p, o, r, a, rows, m):
            return member(p, o, r, a, lambda i: gathered(data, rows, m, i, mesh), n)

        return replicated(over_members(one, (params, opt_state, rest, active, idx, mask), per_step))

    def from_member_batches(params, opt_state, rest, active, batches, n):
        TRACES.hit()

        def one(p, o, r, a, b):
            return member(p, o, r, a, lambda i: jax.tree.map(lambda leaf: leaf[i], b), n)

        return replicated(over_members(one, (params, opt_state, rest, active, batches), per_step))

    def from_batches(params, opt_state, rest, active, batches, n):
        TRACES.hit()

        def one(p, o, r, a):
            return member(p, o, r, a, lambda i: jax.tree.map(lambda b: b[i], batches), n)

        return replicated(over_members(one, (params, opt_state, rest, active), per_step))

    fns: dict[str, Callable] = {
        "gather": from_device_data,
        "members": from_member_batches,
        "shared": from_batches,
    }
    if mode not in fns:
        raise ValueError(f"compiled_sweep_train: `mode` must be one of {sorted(fns)}, got {mode!r}")
    # the whole state flat (on_leaves), donated: params, optimizer state, rest and active
    flat = on_leaves(fns[mode])
    if library_compiled(per_step):
        eigen_dots = step_eigen_dots(graphdef, options)
        return _conv_compiler.jit(flat, static_argnums=0, donate_argnums=1, eigen_dots=eigen_dots)
    return jax.jit(flat, static_argnums=0, donate_argnums=1)


def library_compiled(per_step: int | None) -> bool:
    """Whether the sweep dispatch is compiled as ``fit``'s (``_conv_compiler.jit``).

    Only where members run one at a time (``per_step == 1``, as ``sweep`` passes for one
    member): each member's step is then ``fit``'s program, whose compiler choices
    (Eigen convolutions; an LSTM's matmuls per
    :func:`~nnjax.train.compiled.eigen_dots_for`) were measured for it. Vmapped members
    batch their convolutions into grouped ones, where it measured both ways (0.91 and
    1.04-1.06 of plain ``jit``'s time for two CNNs; ``benchmarks/README.md``, "Session
    23"), so they keep plain :func:`jax.jit`. A sweep's validation follows the same rule
    (one member at a time: :func:`nnjax.train.eval_blocks.library_jit`, as ``evaluate``).

    Example:
      >>> library_compiled(1), library_compiled(None), library_compiled(4)
      (True, False, False)
    """
    return per_step == 1


def finite_update(losses: jax.Array, params: PyTree) -> jax.Array:
    """Whether a member's dispatch stayed finite: every step's loss and the new parameters.

    Example:
      >>> bool(finite_update(jnp.array([1.0, jnp.nan]), {"w": jnp.ones(2)}))
      False
    """
    ok = jnp.all(jnp.isfinite(losses))
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


@cached
def _compiled_eval(
    graphdef: nnx.GraphDef, loss: Any, metrics: tuple, options: tuple, per_step, k, mesh, gather
):
    named = dict(options)
    eval_step = step.make_eval_step(
        graphdef, loss, metrics, precision=named["precision"], loss_fn=named["loss_fn"]
    )

    def members(params, rest, batch):  # one shared batch, members as over_members says
        return over_members(lambda p, r: eval_step(p, r, batch), (params, rest), per_step)

    # as the train dispatch: fit's compiler where members run one at a time
    library = library_compiled(per_step)
    jit = eval_blocks.library_jit(graphdef, named["precision"]) if library else jax.jit
    return eval_blocks.over_batches(members, k, mesh, gather, jit=jit)


def make_validate(
    eval_graphdef: nnx.GraphDef,
    source: Any,
    loss: Any,
    metrics: tuple,
    options: tuple,
    mesh: Mesh | None = None,
    per_step: int | None = None,
) -> Callable[[SweepState], dict[str, np.ndarray]]:
    """``validate(state) -> {name: (M,)}``: every member's exact loss and metrics.

    (Or, with a ``loss_fn``, its loss and logs, each averaged over the batches as
    ``fit``'s validation does, :func:`~nnjax.train.evaluate.summarize`.)

    Each dispatch evaluates every member on
    :data:`~nnjax.train.eval_blocks.BATCHES_PER_DISPATCH` batches (fewer where they
    are large, :func:`~nnjax.train.eval_blocks.block_feeder`) (``per_step`` members
    vmapped together, as :func:`over_members`; each batch split over ``mesh``: each
    process reads only its rows; in-memory data put on the device once, for every
    epoch); the statistics are summed over the batches per member, as ``evaluate``
    does.
    """
    resolved = step.resolve_metrics(metrics)
    mesh = mesh or sharding.make_mesh(jax.devices()[:1])
    feeder = eval_blocks.block_feeder(source, mesh)
    fn = _compiled_eval(
        eval_graphdef, loss, metrics, options, per_step, feeder.k, mesh, feeder.gather
    )

    def validate(state: SweepState) -> dict[str, np.ndarray]:
        host = eval_blocks.block_outputs(fn, state.params, state.rest, feeder)  # (n, M, ...)
        members = len(state.active)
        member = lambda i: [jax.tree.map(lambda a: a[:, i], block) for block in host]
        per = [summarize(resolved, member(i), stacked=True) for i in range(members)]
        return {name: np.array([p[name] for p in per]) for name in per[0]}

    return validate


def member_logs(outs: list[dict], metrics: Sequence[metrics_lib.Metric]) -> dict[str, np.ndarray]:
    """Per-member epoch logs ``name -> (M,)`` from dispatch logs with leaves ``(M, K, ...)``.

    Example:
      >>> out = {"loss": np.array([[1.0], [3.0]]), "count": np.ones((2, 1)),
      ...        "logs": {}, "metrics": {}}
      >>> member_logs([out], ())["loss"].tolist()
      [1.0, 3.0]
    """
    members = len(outs[0]["loss"])
    per = [epoch_logs([take(o, i) for o in outs], metrics) for i in range(members)]
    return {name: np.array([p[name] for p in per]) for name in per[0]}


def make_sweep_logs(
    metrics: Sequence[metrics_lib.Metric], validate: Callable | None
) -> Callable[[SweepState, list[dict], int], dict[str, np.ndarray]]:
    """The engine's ``logs_fn`` for a sweep: per-member arrays, NaN for stopped members.

    A member that diverged (non-finite loss; frozen inside the compiled step) is
    inactive from that epoch on: its logs are NaN from the epoch it diverged in, and the
    others go on (:attr:`~nnjax.train.sweep_result.SweepResult.diverged_epoch`).
    """

    def logs_fn(state: SweepState, host: list[dict], epoch: int) -> dict[str, np.ndarray]:
        del epoch
        logs = member_logs(host, metrics)
        if validate is not None:
            logs.update({f"val_{k}": v for k, v in validate(state).items()})
        hyper = optimizers.hyperparameters(state.opt_state)
        if "learning_rate" in hyper:  # as fit logs it: the shortest float of the float32
            rates = np.asarray(jax.device_get(hyper["learning_rate"]), np.float32)
            logs["learning_rate"] = np.array([float(str(r)) for r in rates.ravel()])
        scales = loss_scale.logged(state.opt_state)
        if scales is not None:
            logs["loss_scale"] = scales.reshape(-1)
        stopped = np.asarray(jax.device_get(state.active)) == 0
        return {name: np.where(stopped, np.nan, value) for name, value in logs.items()}

    return logs_fn


__all__ = [
    "CPU_VMAP_MAX_PARAMS",
    "SweepFeeder",
    "SweepHistory",
    "SweepState",
    "auto_eval_per_step",
    "auto_per_step",
    "compiled_sweep_train",
    "finite_update",
    "init_opt_states",
    "library_compiled",
    "make_sweep_logs",
    "make_validate",
    "member_logs",
    "over_members",
    "select",
    "stack",
    "take",
]
