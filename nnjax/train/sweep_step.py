"""The compiled parts of a sweep: ``M`` stacked members through the engine's epoch loop.

:class:`SweepState` is the run's state (every leaf stacked on a leading axis ``M``,
plus each member's ``active`` flag); :func:`compiled_sweep_train` is the dispatch: one
``jax.vmap`` of ``fit``'s own step and device loop, whose result is kept only for
active members (a stopped member's state does not move, inside the compiled step).
:class:`SweepFeeder` hands the engine each dispatch's per-member batches (member ``i``
sees exactly what ``fit(..., seed=seeds[i])`` sees); :func:`make_sweep_logs` turns the
host outputs into per-member logs ``name -> (M,)`` (NaN for stopped members).

Example:
  >>> state = SweepState({}, (), {}, np.ones(2, np.float32))
  >>> state._fields
  ('params', 'opt_state', 'rest', 'active')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nnjax import metrics as metrics_lib
from nnjax.train import optimizers, sharding, step
from nnjax.train.compiled import TRACES, cached, gathered, loop_steps
from nnjax.train.data import ArraySource, epoch_index
from nnjax.train.engine import epoch_logs
from nnjax.train.evaluate import summarize
from nnjax.train.feeder import Chunk, DeviceFeeder

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
    return _select()(jnp.asarray(keep), new, old)


@cached
def compiled_sweep_train(
    graphdef: nnx.GraphDef,
    loss: Any,
    factory: Callable,
    names: tuple[str, ...],
    metrics: tuple,
    k: int,
    gather: bool,
    options: tuple = (),
    per_step: int | None = None,
) -> Callable:
    """The jitted, donating sweep dispatch; memoised on its (hashable) arguments.

    With ``gather``: ``fn(params, opt_state, rest, active, data, idx, mask, n)`` with
    ``idx``/``mask`` ``(M, K, B)`` row indices into device-resident ``data``; otherwise
    ``fn(params, opt_state, rest, active, batches, n)`` with one stacked ``Batch``
    ``(K, B, ...)`` shared by every member. Each member runs ``fit``'s step
    (:func:`nnjax.train.step.make_train_step` under ``optax.inject_hyperparams``, its
    values read from the member's optimizer state) in ``fit``'s device loop; members
    with ``active == 0`` keep their state. ``per_step`` members are computed together
    (``jax.vmap``) and the groups of them one after another in a device loop
    (``lax.map``); ``None``: all at once, ``1``: one member at a time (unbatched
    matrix products, as ``fit``'s own program).
    """
    # Placeholder values: inject_hyperparams reads every member's values from its state.
    tx = optax.inject_hyperparams(factory)(**dict.fromkeys(names, 0.0))
    steps = loop_steps(step.make_train_step(graphdef, loss, tx, metrics, **dict(options)), k)

    def member(params, opt_state, rest, active, get, n):
        new = steps(params, opt_state, rest, get, n)
        keep = active > 0
        kept = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new[:3], (params, opt_state, rest))
        return (*kept, active, new[3])

    def from_device_data(params, opt_state, rest, active, data, idx, mask, n):
        TRACES.hit()

        def one(p, o, r, a, rows, m):
            return member(p, o, r, a, lambda i: gathered(data, rows, m, i, None), n)

        return over_members(one, (params, opt_state, rest, active, idx, mask), per_step)

    def from_batches(params, opt_state, rest, active, batches, n):
        TRACES.hit()

        def one(p, o, r, a):
            return member(p, o, r, a, lambda i: jax.tree.map(lambda b: b[i], batches), n)

        return over_members(one, (params, opt_state, rest, active), per_step)

    return jax.jit(from_device_data if gather else from_batches, donate_argnums=(0, 1, 2))


def over_members(fn: Callable, xs: tuple, per_step: int | None) -> Any:
    """``fn(*member)`` for every member of the stacked ``xs``: vmapped ``per_step`` at a time.

    ``None`` (or ``per_step >= M``): one ``jax.vmap``; ``1`` (or ``M == 1``): a
    ``lax.map`` loop over members, each unbatched; else ``lax.map`` over vmapped blocks.

    Example:
      >>> xs = (jnp.arange(4.0),)
      >>> double = lambda a: a * 2
      >>> over_members(double, xs, 1).tolist(), over_members(double, xs, 3).tolist()
      ([0.0, 2.0, 4.0, 6.0], [0.0, 2.0, 4.0, 6.0])
    """
    m = jax.tree.leaves(xs)[0].shape[0]
    if m > 1 and (per_step is None or per_step >= m):
        return jax.vmap(fn)(*xs)
    if m == 1 or per_step == 1:
        return jax.lax.map(lambda member: fn(*member), xs)
    return jax.lax.map(lambda member: fn(*member), xs, batch_size=per_step)


#: On CPU, members with at most this many parameters are vmapped together; larger ones
#: run one at a time in the program's device loop. Measured (``benchmarks/bench_sweep.py``,
#: 2 busy cores, Adam, batch 32): the digits MLP 64-64-10 (4.8k parameters) vmapped ran
#: 2x (M=4) to 10x (M=64) faster than a loop over members, while the Fashion-MNIST MLP
#: 784-500-300-100-10 (567k) vmapped ran 2.1x slower than the loop at M=4 (batched
#: matrix products are slow on XLA:CPU for large layers).
CPU_VMAP_MAX_PARAMS = 100_000


def auto_per_step(params: PyTree, platform: str) -> int | None:
    """``members_per_step="auto"``: all vmapped (None) off CPU or for small members, else 1.

    Example:
      >>> big = {"w": np.zeros((4, 200_000))}  # 4 members of 200k parameters
      >>> small = {"w": np.zeros((4, 9))}
      >>> auto_per_step(big, "cpu"), auto_per_step(big, "gpu"), auto_per_step(small, "cpu")
      (1, None, None)
    """
    leaves = jax.tree.leaves(params)
    per_member = sum(int(np.prod(a.shape[1:])) for a in leaves)
    return None if platform != "cpu" or per_member <= CPU_VMAP_MAX_PARAMS else 1


class SweepFeeder:
    """Each dispatch's batches for every member, as :class:`~nnjax.train.feeder.Chunk` s.

    Array data is put on the device once; member ``i`` gets the rows
    ``epoch_index(seeds[i], epoch, N, B)`` (``fit``'s data-order rule), sent as
    ``(M, K, B)`` indices. An iterable's batches are shared by every member (their
    order is the iterable's own, as in ``fit``).

    Example:
      >>> from nnjax.train.data import ArraySource
      >>> src = ArraySource(np.ones((10, 2), np.float32), np.zeros(10, np.int32), batch_size=4)
      >>> [c.args[1].shape for c in SweepFeeder(src, [0, 1], k=2).epoch(0, 0)]
      [(2, 2, 4), (2, 2, 4)]
    """

    def __init__(self, source: Any, seeds: Sequence[int], k: int) -> None:
        self.source, self.seeds, self.k = source, list(seeds), k
        self.gather = isinstance(source, ArraySource)
        self.data = jax.device_put(source.device_arrays()) if self.gather else None
        self._host = None
        if not self.gather:
            mesh = sharding.make_mesh(jax.devices()[:1])
            self._host = DeviceFeeder(source, mesh, k, on_device=False)

    def epoch(self, seed: int, epoch: int, *, shuffle: bool = True):
        """The dispatches of one epoch (``seed`` is unused: each member has its own)."""
        del seed
        if self._host is not None:
            yield from self._host.epoch(0, epoch, shuffle=shuffle)
            return
        n, b = self.source.n, self.source.batch_size
        order = [epoch_index(s, epoch, n, b, shuffle=shuffle) for s in self.seeds]
        idx, mask = np.stack([o[0] for o in order]), np.stack([o[1] for o in order])
        for start in range(0, idx.shape[1], self.k):
            steps = min(self.k, idx.shape[1] - start)
            pad = ((0, 0), (0, self.k - steps), (0, 0))
            chunk_idx = np.pad(idx[:, start : start + steps], pad).astype(np.int32)
            chunk_mask = np.pad(mask[:, start : start + steps], pad)
            args = (self.data, jnp.asarray(chunk_idx), jnp.asarray(chunk_mask), steps)
            yield Chunk(args, steps, int(chunk_mask[0].sum()))


@cached
def _compiled_eval(graphdef: nnx.GraphDef, loss: Any, metrics: tuple, options: tuple):
    named = dict(options)
    eval_step = step.make_eval_step(
        graphdef, loss, metrics, precision=named["precision"], loss_fn=named["loss_fn"]
    )
    return jax.jit(jax.vmap(eval_step, in_axes=(0, 0, None)))


def make_validate(
    eval_graphdef: nnx.GraphDef, source: Any, loss: Any, metrics: tuple, options: tuple
) -> Callable[[SweepState], dict[str, np.ndarray]]:
    """``validate(state) -> {name: (M,)}``: every member's exact loss and metrics.

    Members are evaluated together (one vmapped, jitted evaluation step per batch);
    the statistics are summed over the batches per member, as ``evaluate`` does.
    """
    eval_step = _compiled_eval(eval_graphdef, loss, metrics, options)
    resolved = step.resolve_metrics(metrics)

    def validate(state: SweepState) -> dict[str, np.ndarray]:
        batches = source.batches(0, 0, shuffle=False)
        outs = [eval_step(state.params, state.rest, jax.device_put(b)) for b in batches]
        host = jax.device_get(outs)
        members = len(state.active)
        per = [summarize(resolved, [take(o, i) for o in host]) for i in range(members)]
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

    A diverging member gets NaN logs and does not stop the others.
    """

    def logs_fn(state: SweepState, host: list[dict], epoch: int) -> dict[str, np.ndarray]:
        del epoch
        logs = member_logs(host, metrics)
        if validate is not None:
            logs.update({f"val_{k}": v for k, v in validate(state).items()})
        hyper = optimizers.hyperparameters(state.opt_state)
        if "learning_rate" in hyper:
            logs["learning_rate"] = np.asarray(jax.device_get(hyper["learning_rate"]), np.float64)
        stopped = np.asarray(jax.device_get(state.active)) == 0
        return {name: np.where(stopped, np.nan, value) for name, value in logs.items()}

    return logs_fn


class SweepHistory:
    """Per-epoch logs of ``M`` members: ``history[name]`` is ``(M, epochs)``.

    Example:
      >>> h = SweepHistory()
      >>> h.append(0, {"loss": np.array([1.0, 2.0])})
      >>> h["loss"].shape, h.epoch
      ((2, 1), [0])
    """

    def __init__(self) -> None:
        self.logs: dict[str, list[np.ndarray]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Records one epoch's ``(M,)`` logs."""
        for name, value in logs.items():
            self.logs.setdefault(name, []).append(np.asarray(value, np.float64))
        self.epoch.append(int(epoch))

    def __getitem__(self, name: str) -> np.ndarray:
        return np.stack(self.logs[name], axis=1)

    def __len__(self) -> int:
        return len(self.epoch)

    def arrays(self) -> dict[str, np.ndarray]:
        """``name -> (M, epochs)``."""
        return {name: self[name] for name in self.logs}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"epoch": [...], "history": {name: [[epoch values]...]}}``."""
        history = {name: [v.tolist() for v in values] for name, values in self.logs.items()}
        return {"epoch": list(self.epoch), "history": history}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepHistory:
        """Rebuilds a history from :meth:`to_dict`'s output."""
        history = cls()
        history.epoch = [int(e) for e in data["epoch"]]
        history.logs = {
            name: [np.asarray(v, np.float64) for v in values]
            for name, values in data["history"].items()
        }
        return history


__all__ = [
    "CPU_VMAP_MAX_PARAMS",
    "SweepFeeder",
    "SweepHistory",
    "SweepState",
    "auto_per_step",
    "compiled_sweep_train",
    "make_sweep_logs",
    "make_validate",
    "member_logs",
    "over_members",
    "select",
    "stack",
    "take",
]
