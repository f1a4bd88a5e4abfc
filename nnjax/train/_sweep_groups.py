"""The compile groups of a sweep: members with equal ``model_fn`` arguments.

Members whose ``model_fn`` hyperparameters are equal build the same model graph, so
they share one compiled program; :func:`groups` collects them (in first-seen order, at
most ``size`` per group) and :func:`hashable` makes their values comparable
(re-exported by :mod:`nnjax.train.sweep_space`). After training, :func:`assemble`
puts the trained groups back together as one
:class:`~nnjax.train.sweep_result.SweepResult`.

Example:
  >>> [idx.tolist() for idx, _ in groups({"w": [4, 4, 4]}, ["w"], 3, 2)]
  [[0, 1], [2]]
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from flax import nnx

from nnjax.train.sweep_result import MemberGroup, SweepResult


def groups(
    hp: Mapping[str, list], model_names: Sequence[str], m: int, size: int | None
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Member indices and shared ``model_fn`` arguments of each group, in first-seen order.

    Members with equal ``model_fn`` arguments share a group, split into groups of at
    most ``size`` members (``None``: no limit).

    Example:
      >>> [(idx.tolist(), s) for idx, s in groups({"w": [4, 8, 4]}, ["w"], 3, None)]
      [([0, 2], {'w': 4}), ([1], {'w': 8})]
    """
    by_key: dict[Any, list[int]] = {}
    for i in range(m):
        by_key.setdefault(hashable(tuple(hp[n][i] for n in model_names)), []).append(i)
    out = []
    for idx in by_key.values():
        structure = {n: hp[n][idx[0]] for n in model_names}
        step_ = size or len(idx)
        out += [(np.asarray(idx[s : s + step_]), structure) for s in range(0, len(idx), step_)]
    return out


def hashable(value: Any) -> Any:
    """A hashable stand-in for a model_fn value (lists become tuples), for grouping.

    Example:
      >>> hashable([64, [32]])
      (64, (32,))
    """
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return value


class SweepHistory:
    """Per-epoch logs of ``M`` members: ``history[name]`` is ``(M, epochs)``.

    A name missing from an epoch's logs is NaN there (as is every earlier epoch of a
    name first logged later), so every name has one column per epoch.

    Example:
      >>> h = SweepHistory()
      >>> h.append(0, {"loss": np.array([1.0, 2.0])})
      >>> h["loss"].shape, h.epoch
      ((2, 1), [0])
      >>> "loss" in h, list(h), len(h)  # by name, as History; len counts epochs
      (True, ['loss'], 1)
    """

    def __init__(self) -> None:
        self.logs: dict[str, list[np.ndarray]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Records one epoch's ``(M,)`` logs."""
        values = {name: np.asarray(value, np.float64) for name, value in logs.items()}
        shape = next(iter(values.values())).shape if values else self._shape()
        for name, value in values.items():
            self._column(name, shape).append(value)
        for column in self.logs.values():
            if len(column) == len(self.epoch):  # a name this epoch did not log
                column.append(np.full(shape, np.nan))
        self.epoch.append(int(epoch))

    def amend(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Records what callbacks added to or changed in ``logs`` of the last epoch.

        As :meth:`nnjax.train.history.History.amend` for ``fit``: the engine appends an
        epoch's logs before the callbacks' ``on_epoch_end`` and amends them after it.
        Values that are real numbers (one for every member) or ``(M,)`` arrays of them
        are recorded; others are left out.

        Raises:
          ValueError: ``epoch`` is not the last epoch appended.

        Example:
          >>> h = SweepHistory()
          >>> logs = {"loss": np.array([1.0, 2.0])}
          >>> h.append(0, logs)
          >>> logs["gap"] = np.array([0.5, 0.25])
          >>> h.amend(0, logs)
          >>> h["gap"].tolist()
          [[0.5], [0.25]]
        """
        if not self.epoch or self.epoch[-1] != int(epoch):
            last = self.epoch[-1] if self.epoch else None
            raise ValueError(
                f"SweepHistory.amend: epoch {epoch} is not the last one appended ({last})"
            )
        shape = self._shape()
        for name, value in logs.items():
            row = _member_values(value, shape)
            if row is not None:
                self._column(name, shape)[-1] = row

    def _shape(self) -> tuple[int, ...]:
        """``(M,)`` as the recorded logs have it (``()`` before any)."""
        return next((c[0].shape for c in self.logs.values() if c), ())

    def _column(self, name: str, shape: tuple[int, ...]) -> list[np.ndarray]:
        """``name``'s values, NaN for the epochs recorded before it appeared."""
        nan = np.full(shape, np.nan)
        return self.logs.setdefault(name, [nan] * len(self.epoch))

    def __getitem__(self, name: str) -> np.ndarray:
        return np.stack(self.logs[name], axis=1)

    def __contains__(self, name: object) -> bool:  # by metric name, as History
        return name in self.logs

    def __iter__(self) -> Iterator[str]:
        return iter(self.logs)

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


def _member_values(value: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as float64 of the members' ``shape`` (a real number broadcast), or None.

    Example:
      >>> _member_values(0.5, (2,)).tolist(), _member_values("text", (2,))
      ([0.5, 0.5], None)
    """
    try:
        array = np.asarray(value)
    except Exception:  # an object NumPy cannot hold as an array
        return None
    if array.dtype.kind not in "iuf":  # real numbers only (as History.amend)
        return None
    if array.shape not in ((), shape):
        return None
    return np.broadcast_to(array.astype(np.float64), shape).copy()


def hyperparam_arrays(hp: Mapping[str, list], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each named hyperparameter's values per member: int64, float64 or object.

    int64 when every value is an integer (a width), float64 when numeric, else object.

    Example:
      >>> hyperparam_arrays({"lr": [np.float32(0.5), 1], "act": ["relu", "tanh"]}, ["lr", "act"])
      {'lr': array([0.5, 1. ]), 'act': array(['relu', 'tanh'], dtype=object)}
      >>> hyperparam_arrays({"width": [4, np.int32(8)]}, ["width"])["width"].tolist()
      [4, 8]
    """
    out = {}
    for name in names:
        values = np.empty(len(hp[name]), object)
        for i, v in enumerate(hp[name]):
            values[i] = v
        kinds = {_kind(v) for v in hp[name]}
        dtype = np.int64 if kinds == {"int"} else np.float64 if kinds <= {"int", "real"} else object
        out[name] = values.astype(dtype)
    return out


def _kind(value: Any) -> str:
    """``"int"``, ``"real"`` or ``"other"`` (a bool is other: it is no size)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return "other"
    return "int" if isinstance(value, numbers.Integral) else "real"


def diverged_epochs(run: Any, stopped: np.ndarray) -> np.ndarray:
    """Each member's first epoch with a non-finite training loss, -1 for none.

    A member that stopped early (``stopped >= 0``) did not diverge: its logs are NaN
    only after it stopped.

    Example:
      >>> from types import SimpleNamespace
      >>> h = SweepHistory()
      >>> h.append(0, {"loss": np.array([1.0, 1.0, 1.0])})
      >>> h.append(1, {"loss": np.array([0.5, np.nan, np.nan])})
      >>> diverged_epochs(SimpleNamespace(history=h), np.array([-1, -1, 0])).tolist()
      [-1, 1, -1]
    """
    history = run.history
    if not len(history) or "loss" not in history.logs:
        return np.full(len(stopped), -1)
    bad = ~np.isfinite(history["loss"])
    first = np.where(bad.any(axis=1), np.argmax(bad, axis=1), -1)
    epochs = np.asarray(history.epoch)
    return np.where((first >= 0) & (stopped < 0), epochs[np.maximum(first, 0)], -1)


def assemble(
    done: Sequence[dict[str, Any]],
    seeds: Sequence[int],
    hp: dict[str, list],
    hp_names: Sequence[str],
    stop_spec: Any,
) -> SweepResult:
    """The :class:`SweepResult` of the trained groups ``done`` (in the sweep's order).

    Each entry of ``done`` holds a group's member indices ``idx``, its engine ``run``
    (state and history), its per-member ``stopping`` state (or ``None``), its
    ``model`` and its ``structure``. Histories are ``(M, epochs)``, NaN after a
    member stopped and from the epoch a member diverged in.
    """
    m = len(seeds)
    epochs_run = max((len(d["run"].history) for d in done), default=0)
    names = list(dict.fromkeys(n for d in done for n in d["run"].history.logs))
    history = {n: np.full((m, epochs_run), np.nan) for n in names}
    stopped, held, diverged = np.full(m, -1), np.full(m, -1), np.full(m, -1)
    groups = []
    for d in done:
        idx, run, stopping = d["idx"], d["run"], d["stopping"]
        for n, values in run.history.arrays().items():
            history[n][idx, : values.shape[1]] = values
        last = run.history.epoch[-1] if len(run.history) else -1
        group_stopped = np.full(len(idx), -1) if stopping is None else stopping.stopped_epoch
        group_diverged = diverged_epochs(run, group_stopped)
        held_here = np.where(group_stopped >= 0, group_stopped, last)
        held_here = np.where(group_diverged >= 0, -1, held_here)
        if stopping is not None and stopping.restore_best_weights:
            restored = (stopping.best_epoch >= 0) & (group_diverged < 0)
            held_here = np.where(restored, stopping.best_epoch, held_here)
        stopped[idx], held[idx], diverged[idx] = group_stopped, held_here, group_diverged
        state = run.state
        groups.append(MemberGroup(
            nnx.graphdef(d["model"]), state.params, state.rest, state.opt_state, idx,
            d["structure"],
        ))  # fmt: skip
    return SweepResult(
        groups=groups,
        seeds=np.asarray(seeds),
        hyperparams=hyperparam_arrays(hp, hp_names),
        history=history,
        stopped_epoch=stopped if stop_spec is not None else None,
        weights_epoch=held,
        diverged_epoch=diverged,
    )
