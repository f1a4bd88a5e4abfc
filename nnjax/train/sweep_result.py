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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax._optional import require
from nnjax.train.callbacks import Monitor

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
        if not self.history and metric == self.default_metric():  # epochs=0: no scores
            return metric, Monitor(metric, mode).mode, np.full((self.num_members, 0), np.nan)
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
        if not scores.shape[1]:  # no epoch ran
            return np.full(len(scores), np.nan), np.full(len(scores), -1)
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
        at = np.full(len(scores), np.nan)
        if scores.shape[1]:
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


# The sweep's predictions live in nnjax.train.ensemble (they compile per structure
# group); re-exported here, where they were first defined. Imported last: that module
# reads SweepResult, defined above.
from nnjax.train.ensemble import ensemble_predict, member_predictions  # noqa: E402

__all__ = ["MemberGroup", "SweepResult", "ensemble_predict", "member_predictions"]
