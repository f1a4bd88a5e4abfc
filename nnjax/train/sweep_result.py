"""What a sweep returns: :class:`SweepResult` (members, histories, a table, the best one).

Members with equal structure (the same ``model_fn`` arguments) were trained together
and are stored together, stacked on a leading axis, as one :class:`MemberGroup`;
member ``i`` of the sweep is found in its group by :meth:`SweepResult.member`.

Example:
  >>> history = {"val_loss": np.array([[0.9, 0.5], [0.8, 0.7]])}
  >>> r = SweepResult([], np.array([0, 1]), {"learning_rate": np.array([0.1, 0.2])}, history)
  >>> r.best_index()
  0
"""

from __future__ import annotations

import csv
import dataclasses
import numbers
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax import activations
from nnjax._optional import require
from nnjax.train import step as step_lib
from nnjax.train.callbacks import Monitor
from nnjax.train.compiled import cached
from nnjax.train.members import auto_eval_per_step, over_members

PyTree = Any


@dataclasses.dataclass
class MemberGroup:
    """Members of one structure, stacked on a leading axis ``G``.

    Attributes:
      graphdef: the members' graph, in the mode ``model_fn`` built them in.
      params: stacked ``nnx.Param`` state, every leaf ``(G, ...)``.
      rest: stacked other state (batch statistics, RNG streams).
      opt_state: stacked ``optax.inject_hyperparams`` states.
      members: the sweep's index of each member, ``(G,)``.
      structure: the ``model_fn`` arguments they share.

    Example:
      >>> from nnjax import nn
      >>> gd, p0, r0 = nnx.split(nn.MLP(2, (4,), 1, rngs=nnx.Rngs(0)), nnx.Param, ...)
      >>> _, p1, r1 = nnx.split(nn.MLP(2, (4,), 1, rngs=nnx.Rngs(1)), nnx.Param, ...)
      >>> stack = lambda *trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)
      >>> group = MemberGroup(gd, stack(p0, p1), stack(r0, r1), (), np.array([0, 1]), {})
      >>> group.params["layers"][0]["kernel"].shape  # G = 2 members of (2, 4) kernels
      (2, 2, 4)
      >>> result = SweepResult([group], np.array([0, 1]), {}, {"loss": np.array([[0.5], [0.4]])})
      >>> result.member(1)(jnp.ones((3, 2))).shape, result.best_index("loss")
      ((3, 1), 1)
    """

    graphdef: nnx.GraphDef
    params: PyTree
    rest: PyTree
    opt_state: PyTree
    members: np.ndarray
    structure: dict[str, Any]


@dataclasses.dataclass
class SweepResult:
    """The trained members of a sweep.

    Attributes:
      groups: the :class:`MemberGroup` s, in training order.
      seeds: each member's seed, ``(M,)``.
      hyperparams: each swept hyperparameter's value per member, ``name -> (M,)``.
      history: per-epoch logs ``name -> (M, epochs)`` (train, ``val_*``, learning rate);
        NaN after a member stopped.
      stopped_epoch: the 0-based epoch after which each member stopped early (-1:
        never); ``None`` when the sweep ran without ``EarlyStopping``.
      weights_epoch: the epoch whose weights each member holds (its best epoch with
        ``restore_best_weights``, else its last trained one; -1: none, e.g. a member
        that diverged, which holds the weights it had before its first non-finite
        dispatch).
      diverged_epoch: the 0-based epoch in which each member's training loss (or a
        parameter) became NaN or infinite, where ``fit`` of it alone raises
        :class:`~nnjax.train.engine.NonFiniteLossError` (-1: never). Such a member was
        frozen there while the others went on; its history is NaN from that epoch on
        and :meth:`best_index` never picks it. ``None``: not recorded.

    Example:
      ``train.sweep`` builds it; here two members' histories are given by hand:

      >>> history = {"loss": np.array([[0.9, 0.6], [0.8, 0.3]]),
      ...            "val_loss": np.array([[0.9, 0.5], [0.8, 0.7]])}
      >>> r = SweepResult([], np.array([0, 1]), {"learning_rate": np.array([0.1, 0.2])},
      ...                 history)
      >>> r.num_members, r.default_metric(), r.best_index(), r.best_index("loss")
      (2, 'val_loss', 0, 1)
    """

    groups: list[MemberGroup]
    seeds: np.ndarray
    hyperparams: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    stopped_epoch: np.ndarray | None = None
    weights_epoch: np.ndarray | None = None
    diverged_epoch: np.ndarray | None = None

    @property
    def num_members(self) -> int:
        """``M``, the number of members."""
        return len(self.seeds)

    def _single(self) -> MemberGroup:
        if len(self.groups) != 1:
            raise ValueError(
                f"this sweep has {len(self.groups)} groups of different structure; use "
                "result.groups[g] or result.member(i) instead of stacked attributes"
            )
        return self.groups[0]

    graphdef = property(lambda self: self._single().graphdef, doc="The one group's graph.")
    params = property(lambda self: self._single().params, doc="The one group's stacked params.")
    rest = property(lambda self: self._single().rest, doc="The one group's other state.")
    opt_state = property(lambda self: self._single().opt_state, doc="Its optimizer states.")

    def _locate(self, i: int) -> tuple[MemberGroup, int]:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"a member index must be an int, got {i!r} ({type(i).__name__})")
        if not -self.num_members <= i < self.num_members:
            raise IndexError(f"member {i} out of range for {self.num_members} members")
        i %= self.num_members
        for group in self.groups:
            where = np.flatnonzero(group.members == i)
            if where.size:
                return group, int(where[0])
        raise IndexError(f"member {i} is in no group")

    def member(self, i: int) -> nnx.Module:
        """Member ``i`` as a standalone NNX model (a copy; training it leaves this intact)."""
        group, j = self._locate(i)
        copy = lambda a: jnp.array(a[j])
        return nnx.merge(
            group.graphdef, jax.tree.map(copy, group.params), jax.tree.map(copy, group.rest)
        )

    def default_metric(self) -> str:
        """``"val_loss"`` when validation ran, else ``"loss"``."""
        return "val_loss" if "val_loss" in self.history else "loss"

    def _scores(self, metric: str | None, mode: str) -> tuple[str, str, np.ndarray]:
        metric = metric or self.default_metric()
        if metric not in self.history:
            raise KeyError(f"{metric!r} is not in the history; it has {sorted(self.history)}")
        mode = Monitor(metric, mode).mode
        values = np.asarray(self.history[metric], np.float64)
        return metric, mode, values if mode == "min" else -values

    def best_epochs(self, metric: str | None = None, mode: str = "auto") -> tuple:
        """``(values (M,), epochs (M,))``: each member's best ``metric`` and its epoch.

        NaN (a diverged or stopped epoch) never counts; a member with no finite value
        gets NaN and epoch -1.
        """
        _, _, scores = self._scores(metric, mode)
        finite = np.where(np.isfinite(scores), scores, np.inf)
        epochs = np.argmin(finite, axis=1)
        rows = np.arange(len(scores))
        values = np.asarray(self.history[metric or self.default_metric()])[rows, epochs]
        none = ~np.isfinite(finite[rows, epochs])
        return np.where(none, np.nan, values), np.where(none, -1, epochs)

    def best_index(self, metric: str | None = None, mode: str = "auto") -> int:
        """The member whose weights score best on ``metric``.

        Each member is scored at the epoch whose weights it holds (``weights_epoch``:
        its best epoch with ``restore_best_weights``, else its last one). A NaN score
        never wins, nor does a member that diverged (``diverged_epoch >= 0``); of equal
        scores the lowest member index wins.

        Args:
          metric: a history name (default :meth:`default_metric`).
          mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, AUC, F1,
            precision and recall, else min).

        Raises:
          KeyError: ``metric`` is not in the history.
          ValueError: an unknown ``mode``, or no member has a finite score (all
            diverged, say).
        """
        name, _, scores = self._scores(metric, mode)
        held = self.weights_epoch
        if held is None:
            held = np.full(len(scores), scores.shape[1] - 1)
        rows = np.arange(len(scores))
        at = np.where(held >= 0, scores[rows, np.maximum(held, 0)], np.nan)
        ok = np.isfinite(at)
        if self.diverged_epoch is not None:
            ok &= np.asarray(self.diverged_epoch) < 0
        if not ok.any():
            raise ValueError(
                f"no member of the {self.num_members} has a finite {name!r} for the weights "
                f"it holds (diverged members: {self.diverged_members()}); there is no best"
            )
        return int(np.argmin(np.where(ok, at, np.inf)))

    def diverged_members(self) -> list[int]:
        """The indices of the members whose training diverged (see ``diverged_epoch``).

        Example:
          >>> r = SweepResult([], np.arange(3), {}, {}, diverged_epoch=np.array([-1, 2, -1]))
          >>> r.diverged_members()
          [1]
        """
        if self.diverged_epoch is None:
            return []
        return np.flatnonzero(np.asarray(self.diverged_epoch) >= 0).tolist()

    def best(self, metric: str | None = None, mode: str = "auto") -> nnx.Module:
        """The best member (:meth:`best_index`) as an ordinary NNX model.

        Evaluate, save or fine-tune it like any other model.
        """
        return self.member(self.best_index(metric, mode))

    def rows(self, metric: str | None = None, mode: str = "auto") -> list[dict[str, Any]]:
        """One dict per member: member, seed, hyperparameters, best ``metric``, its epoch.

        Then ``stopped_epoch`` (with ``EarlyStopping``) and ``diverged_epoch`` (when
        recorded, as by ``sweep``), -1 for never. A member without a finite ``metric``
        has ``nan`` and epoch -1.

        Example:
          >>> r = SweepResult([], np.array([0, 1]), {"learning_rate": np.array([0.1, 9.0])},
          ...                 {"loss": np.array([[0.5, 0.4], [np.nan, np.nan]])},
          ...                 diverged_epoch=np.array([-1, 0]))
          >>> row = r.rows()[1]
          >>> row["learning_rate"], row["best_loss"], row["best_epoch"], row["diverged_epoch"]
          (9.0, nan, -1, 0)
        """
        name = metric or self.default_metric()
        values, epochs = self.best_epochs(metric, mode)
        out = []
        for i in range(self.num_members):
            row: dict[str, Any] = {"member": i, "seed": int(self.seeds[i])}
            row.update({n: _plain(v[i]) for n, v in self.hyperparams.items()})
            row[f"best_{name}"] = float(values[i])
            row["best_epoch"] = int(epochs[i])
            if self.stopped_epoch is not None:
                row["stopped_epoch"] = int(self.stopped_epoch[i])
            if self.diverged_epoch is not None:
                row["diverged_epoch"] = int(self.diverged_epoch[i])
            out.append(row)
        return out

    def table(self, metric: str | None = None, mode: str = "auto") -> str:
        """:meth:`rows` as a text table: best ``metric`` (default :meth:`default_metric`).

        Epochs are 0-based, as in ``History.epoch``; ``-1``: none.
        """
        rows = self.rows(metric, mode)
        columns = list(rows[0]) if rows else ["member"]
        cells = [[_cell(r[c]) for c in columns] for r in rows]
        widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(columns)]
        line = lambda parts: "  ".join(p.rjust(w) for p, w in zip(parts, widths)).rstrip()
        return "\n".join([line(columns), *(line(row) for row in cells)])

    def to_dataframe(self, metric: str | None = None, mode: str = "auto") -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` (needs pandas)."""
        pandas = require("pandas", "SweepResult.to_dataframe")
        return pandas.DataFrame(self.rows(metric, mode))

    def to_csv(self, path: str | os.PathLike, metric: str | None = None, mode: str = "auto"):
        """Writes :meth:`rows` as CSV (no pandas needed); with several processes, process 0.

        Every process holds the same result, so only JAX process 0 writes the file (the
        others return at once).
        """
        rows = self.rows(metric, mode)
        if jax.process_index() != 0:
            return
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["member"])
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def ensemble_predict(
    result: SweepResult,
    x: jax.typing.ArrayLike,
    *,
    activation: str | activations.Activation | None = None,
) -> jax.Array:
    """The mean over members of ``activation(member(x))``, members in inference mode.

    Args:
      result: a :class:`SweepResult` with ``M`` members: of one structure (an ensemble
        of seeds, one compiled program), or of several (widths swept: each group's
        members predict in their own program, then all are averaged alike).
      x: ``(B, ...)`` inputs the models take (floating, as in training; a NumPy or JAX
        array).
      activation: applied to each member's output before averaging, e.g. ``"softmax"``
        to average class probabilities; ``None`` averages the raw outputs.

    Returns:
      ``(B, ...)``: shaped like one member's output on ``x`` (e.g. ``(B, classes)``), in
      the members' output dtype (float32 for float32 models). The mean over the ``M``
      members of :func:`member_predictions` (after ``activation``).

    Raises:
      ValueError: groups whose outputs differ in shape or dtype (names them).

    Example:
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.sweep import sweep
      >>> x = np.ones((16, 2), np.float32); y = np.zeros(16, np.int32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 3, rngs=rngs), (x, y),
      ...           loss="cross_entropy", seeds=[0, 1], batch_size=8, epochs=0)
      >>> p = ensemble_predict(r, x[:5], activation="softmax")
      >>> p.shape, p.dtype
      ((5, 3), dtype('float32'))
      >>> bool(jnp.allclose(p.sum(axis=-1), 1.0, atol=1e-6))
      True
    """
    fn = None if activation is None else activations.get(activation)
    if len(result.groups) > 1:  # one program per structure; the mean over all members
        outputs = member_predictions(result, x)
        return jnp.mean(outputs if fn is None else fn(outputs), axis=0).astype(outputs.dtype)
    predict = _compiled_ensemble(_eval_graphdef(result._single()), fn)
    return predict(result.params, result.rest, _input(x))


def member_predictions(result: SweepResult, x: jax.typing.ArrayLike) -> jax.Array:
    """Every member's output on ``x`` (inference mode), stacked ``(M, *output_shape)``.

    Args:
      result: the sweep's result, with ``M`` members (in one group or several: each
        group predicts in its own compiled program).
      x: ``(B, ...)`` inputs the models take (floating, as in training).

    Returns:
      ``(M, B, ...)``: each member's output, in member order, in the models' output
      dtype (float32 for float32 models).

    Raises:
      ValueError: groups whose outputs differ in shape or dtype (names them).

    Example:
      >>> from nnjax.nn import MLP
      >>> from nnjax.train.sweep import sweep
      >>> x = np.ones((8, 2), np.float32)
      >>> r = sweep(lambda rngs: MLP(2, (4,), 1, rngs=rngs), (x, x[:, :1]), loss="mse",
      ...           seeds=[0, 1, 2], metrics=(), epochs=0)
      >>> member_predictions(r, x).shape
      (3, 8, 1)
    """
    x = _input(x)
    stacks = [
        _compiled_members(_eval_graphdef(group))(group.params, group.rest, x)
        for group in result.groups
    ]
    if len(stacks) == 1:
        return stacks[0]
    kinds = {(s.shape[1:], s.dtype) for s in stacks}
    if len(kinds) > 1:
        shown = ", ".join(f"group {g}: {s.shape[1:]} {s.dtype}" for g, s in enumerate(stacks))
        raise ValueError(f"the sweep's groups give outputs of different shapes ({shown})")
    order = np.argsort(np.concatenate([group.members for group in result.groups]))
    return jnp.concatenate(stacks)[order]


def _input(x: Any) -> Any:
    """``x`` as a jitted call takes it beside members placed on any mesh.

    Host data stays NumPy (so it joins arrays spread over several processes as a
    replicated input); JAX arrays pass as they are.
    """
    return x if isinstance(x, jax.Array) else np.asarray(x)


def _eval_graphdef(group: MemberGroup) -> nnx.GraphDef:
    """The inference-mode graph of ``group``'s members (derived once per graph)."""
    return step_lib.graph_in_mode(group.graphdef, group.params, group.rest, training=False)


def _members_predict(graphdef: nnx.GraphDef) -> Callable:
    """``predict(params, rest, x) -> (M, ...)``, members as ``auto_eval_per_step`` says."""
    predict = step_lib.make_predict_step(graphdef)
    per_step = auto_eval_per_step(jax.devices()[0].platform, graphdef)
    return lambda ps, rs, x: over_members(lambda p, r: predict(p, r, x), (ps, rs), per_step)


@cached
def _compiled_members(eval_graphdef: nnx.GraphDef) -> Callable:
    return jax.jit(_members_predict(eval_graphdef))


@cached
def _compiled_ensemble(eval_graphdef: nnx.GraphDef, fn: Callable | None) -> Callable:
    members = _members_predict(eval_graphdef)

    def predict(params, rest, x):
        ys = members(params, rest, x)
        return jnp.mean(ys if fn is None else fn(ys), axis=0)

    return jax.jit(predict)


__all__ = ["MemberGroup", "SweepResult", "ensemble_predict", "member_predictions"]
