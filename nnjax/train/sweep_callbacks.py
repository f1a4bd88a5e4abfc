"""Per-member early stopping and checkpoints of a sweep's stacked state.

:func:`sweep <nnjax.train.sweep.sweep>` reads the settings of the user's
:class:`~nnjax.train.callbacks.EarlyStopping` and
:class:`~nnjax.train.checkpoint.ModelCheckpoint` and runs these in their place:

- :class:`MemberStopping` applies ``EarlyStopping``'s rule
  (:meth:`~nnjax.train.callbacks.EarlyStopping.judge`: ``patience``, ``min_delta``,
  ``baseline``, ``start_from_epoch``) to every member on its own (one
  :class:`~nnjax.train.callbacks.Monitor` and one wait count per member): a
  member that stops is masked out (``active = 0``) and, with
  ``restore_best_weights``, its parameters and model state go back to its best epoch
  at once (a member that never improved keeps its weights, as with ``fit``); the sweep
  ends when every member has stopped. Like ``fit``, members that never stop get their
  best weights back at the end.
- :class:`EndWhenInactive` ends a group's training once no member is active (every
  one stopped or diverged).
- :class:`SweepCheckpoint` saves the whole stacked state (parameters, optimizer state,
  model state, active flags, the kept best weights) with :mod:`nnjax.io` after every
  epoch, and the stopping state and history in the metadata; :func:`resume` reads it
  back so a killed sweep ends where the uninterrupted one ends.

Example:
  >>> from nnjax.train.callbacks import EarlyStopping
  >>> stop = MemberStopping(EarlyStopping("val_loss", patience=2), members=3)
  >>> stop.monitor.monitor, stop.patience
  ('val_loss', 2)
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.io import restore, steps, trees
from nnjax.train.callbacks import Callback, EarlyStopping, Logs, Monitor
from nnjax.train.history import saved_dict
from nnjax.train.monitor import auto_mode
from nnjax.train.progress import format_logs, say
from nnjax.train.sweep_step import SweepHistory, SweepState, select


class MemberStopping(Callback):
    """``EarlyStopping`` per member (see the module docstring).

    Attributes:
      rule: the user's ``EarlyStopping``, whose :meth:`~EarlyStopping.judge` decides
        each member's epoch (it is only read).
      monitor: a :class:`Monitor` naming the metric (checked before training).
      wait, best_epoch, stopped_epoch: ``(M,)`` int arrays (``-1``: none yet).
      best_values: each member's best monitored value.
      best: the best epoch's ``(params, rest)`` (with ``restore_best_weights``).
    """

    def __init__(self, spec: EarlyStopping, members: int) -> None:
        self.rule = spec
        self.monitor = Monitor(spec.monitor.monitor, spec.monitor.mode, spec.monitor.min_delta)
        self.patience = int(spec.patience)
        self.restore_best_weights = bool(spec.restore_best_weights)
        self.members = members
        self.wait = np.zeros(members, np.int64)
        self.best_epoch = np.full(members, -1, np.int64)
        self.stopped_epoch = np.full(members, -1, np.int64)
        self.best_values = np.full(members, self.monitor.best, np.float64)
        self.best: Any = None

    def _monitors(self) -> list[Monitor]:
        monitors = []
        for value in self.best_values:
            m = Monitor(self.monitor.monitor, self.monitor.mode, self.monitor.min_delta)
            m.best = float(value)
            monitors.append(m)
        return monitors

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Keeps a copy of the starting weights (the "best" until an epoch improves)."""
        if self.restore_best_weights and self.best is None:
            state = self.loop.state
            self.best = jax.tree.map(jnp.copy, (state.params, state.rest))

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Updates every active member's best and wait; stops those out of patience."""
        state: SweepState = self.loop.state
        active = np.asarray(jax.device_get(state.active)) > 0
        values = np.asarray((logs or {})[self.monitor.monitor], np.float64)
        improved, stop = np.zeros(self.members, bool), np.zeros(self.members, bool)
        for i, monitor in enumerate(self._monitors()):
            verdict = None
            if active[i]:
                verdict = self.rule.judge(monitor, int(self.wait[i]), epoch, float(values[i]))
            if verdict is not None:
                improved[i], self.wait[i], stop[i] = verdict
                self.best_values[i] = monitor.best
        self.best_epoch[improved] = epoch
        self.stopped_epoch[stop] = epoch
        params, rest = state.params, state.rest
        if self.restore_best_weights and improved.any():
            self.best = select(improved, (params, rest), self.best)
        restore = stop & (self.best_epoch >= 0)  # never improved: keeps its weights, as fit
        if self.restore_best_weights and restore.any():
            params, rest = select(restore, self.best, (params, rest))
        if stop.any():
            new_active = np.where(stop, 0.0, active).astype(np.float32)
            active_on_mesh = self.loop.put_state(new_active, like=state.active)
            self.loop.replace_state(params=params, rest=rest, active=active_on_mesh)
        if not (active & ~stop).any():
            self.loop.request_stop()

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Puts every member's best weights back (``restore_best_weights``), as ``fit``.

        Not a diverged member's (inactive, never stopped): it keeps the weights it had
        before its first non-finite dispatch, as ``fit``'s error leaves them.
        """
        if self.restore_best_weights and self.best is not None:
            state = self.loop.state
            diverged = (np.asarray(state.active) == 0) & (self.stopped_epoch < 0)
            found = (self.best_epoch >= 0) & ~diverged
            params, rest = select(found, self.best, (state.params, state.rest))
            self.loop.replace_state(params=params, rest=rest)

    def to_meta(self) -> dict[str, Any]:
        """The JSON-able stopping state (for a checkpoint)."""
        return {
            "wait": self.wait.tolist(),
            "best_epoch": self.best_epoch.tolist(),
            "stopped_epoch": self.stopped_epoch.tolist(),
            "best_values": [float(v) for v in self.best_values],
        }

    def load_meta(self, meta: dict[str, Any], best: Any) -> None:
        """Restores :meth:`to_meta`'s state and the kept best weights."""
        self.wait = np.asarray(meta["wait"], np.int64)
        self.best_epoch = np.asarray(meta["best_epoch"], np.int64)
        self.stopped_epoch = np.asarray(meta["stopped_epoch"], np.int64)
        self.best_values = np.asarray(meta["best_values"], np.float64)
        self.best = best


class EndWhenInactive(Callback):
    """Requests the end of training after an epoch that leaves no member active.

    Members become inactive when they stop early or diverge; training the rest would
    change nothing.

    Example:
      >>> isinstance(EndWhenInactive(), Callback)
      True
    """

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Requests the stop when no member is active."""
        if not np.any(np.asarray(jax.device_get(self.loop.state.active)) > 0):
            self.loop.request_stop()


class SweepCheckpoint(Callback):
    """Saves a sweep group's stacked state after every epoch (atomically, with nnjax.io).

    Args:
      directory: this group's folder (step folder ``N`` after epoch ``N``, 1-based).
      max_to_keep: how many step folders to keep (``None``: all).
      stopping: the group's :class:`MemberStopping`, whose state is saved too.
      meta: fixed JSON metadata (members, seeds, hyperparameters).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        max_to_keep: int | None,
        stopping: MemberStopping | None,
        meta: dict[str, Any],
    ) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        self.max_to_keep, self.stopping, self.meta = max_to_keep, stopping, meta

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Writes step folder ``epoch + 1``."""
        state: SweepState = self.loop.state
        meta = {
            **self.meta,
            "kind": "sweep",
            "global_step": self.loop.global_step,
            "history": saved_dict(self.loop.history, epoch, logs),
            "stopped": bool(self.loop.stop_training),
        }
        extra = {"active": state.active}
        if self.stopping is not None:
            meta["stopping"] = self.stopping.to_meta()
            if self.stopping.best is not None:
                extra["best"] = self.stopping.best
        items = {
            "state": trees.to_nested({"params": state.params, "rest": state.rest, **extra}),
            "opt_state": trees.to_nested(state.opt_state),
        }
        steps.write_epoch(self.directory, epoch, items, meta, max_to_keep=self.max_to_keep)


def group_folder(directory: str | os.PathLike, g: int) -> str:
    """``directory/group_<g>``: where group ``g`` of a sweep keeps its checkpoints.

    Example:
      >>> group_folder("/tmp/run", 1)
      '/tmp/run/group_1'
    """
    return os.path.join(os.fspath(directory), f"group_{g}")


def check_fresh(folder: str, overwrite: bool, *, resumed: bool) -> None:
    """As ``ModelCheckpoint``: refuse another run's folder unless resuming or overwriting."""
    found = steps.epochs(folder)
    if not found or resumed:
        return
    if not overwrite:
        raise FileExistsError(
            f"ModelCheckpoint: {folder} already holds checkpoints of another sweep; continue "
            "it with sweep(..., resume_from=directory), choose another folder, or pass "
            "overwrite=True to replace it"
        )
    if jax.process_index() == 0:  # one process deletes, as it alone writes
        for _, path in found:
            shutil.rmtree(path, ignore_errors=True)


def group_meta(g: int, idx: np.ndarray, seeds: list, hp: dict[str, list]) -> dict[str, Any]:
    """What a group's checkpoints record of it, and a resumed sweep must match.

    Example:
      >>> group_meta(0, np.array([1]), [3], {"learning_rate": [0.1, np.float32(0.5)]})
      {'group': 0, 'members': [1], 'seeds': [3], 'hyperparams': {'learning_rate': [0.5]}}
    """
    plain = lambda v: v.item() if isinstance(v, np.generic) else v
    values = {name: [plain(hp[name][i]) for i in idx] for name in sorted(hp)}
    return {"group": g, "members": idx.tolist(), "seeds": seeds, "hyperparams": values}


def resume(
    directory: str | os.PathLike,
    state: SweepState,
    stopping: MemberStopping | None,
    expect: dict[str, Any],
) -> tuple[SweepState, SweepHistory, int, int, bool] | None:
    """The newest checkpoint of a group folder, or None when it holds none.

    Returns ``(state, history, next epoch, global step, finished)`` and restores
    ``stopping``'s state; ``finished`` is true when every member had stopped.

    Raises:
      ValueError: the checkpoint's ``expect`` entries (members, seeds, hyperparameters:
        :func:`group_meta`) differ. A checkpoint that predates the hyperparameters'
        record is not checked for them.
      nnjax.io.CheckpointError: damaged, or written for another model.
    """
    if not steps.epochs(directory):
        return None
    extra: dict[str, Any] = {"active": state.active}
    if stopping is not None and stopping.restore_best_weights:
        extra["best"] = (state.params, state.rest)
    template = {
        "state": {"params": state.params, "rest": state.rest, **extra},
        "opt_state": state.opt_state,
    }
    parts, meta = steps.open_newest(directory, lambda f: restore.read_parts(f, template))
    for key, value in json.loads(json.dumps(expect)).items():
        if meta.get(key, value if key == "hyperparams" else None) != value:
            raise ValueError(
                f"sweep: the checkpoint in {directory} has {key}={meta.get(key)!r}, but this "
                f"sweep has {key}={value!r}; resume with the same members, seeds and "
                "hyperparameters (or start a new folder)"
            )
    stored = parts["state"]
    put = lambda tree: jax.tree.map(jnp.asarray, tree)
    restored = SweepState(
        put(stored["params"]), put(parts["opt_state"]), put(stored["rest"]), put(stored["active"])
    )
    if stopping is not None and "stopping" in meta:
        stopping.load_meta(meta["stopping"], put(stored["best"]) if "best" in stored else None)
    history = SweepHistory.from_dict(meta["history"])
    return restored, history, int(meta["epoch"]) + 1, int(meta["global_step"]), meta["stopped"]


SETTINGS = ("learning_rate", "loss_scale")
"""Logs that are settings of a member's run, not results: :class:`SweepProgress` has no best."""


class SweepProgress(Callback):
    """One line per epoch and group: active members and the best value of each result log.

    The best is the highest for logs where higher is better (accuracy, AUC, F1,
    precision, recall: ``Monitor``'s ``"auto"`` rule), else the lowest.

    Example:
      >>> SweepProgress(0, 2, 10).groups
      2
    """

    def __init__(self, g: int, groups: int, epochs: int) -> None:
        self.g, self.groups, self.epochs = g, groups, epochs

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Prints the group's epoch line."""
        active = int(np.sum(np.asarray(self.loop.state.active)))
        best = {
            name: float(np.nanmax(v) if auto_mode(name, default="min") == "max" else np.nanmin(v))
            for name, v in (logs or {}).items()
            if np.isfinite(v).any() and name not in SETTINGS
        }
        prefix = f"Group {self.g + 1}/{self.groups} epoch {epoch + 1}/{self.epochs}"
        members = len(self.loop.state.active)
        say(f"{prefix} - {active}/{members} active - best {format_logs(best)}", 2)


__all__ = [
    "SETTINGS",
    "EndWhenInactive",
    "MemberStopping",
    "SweepCheckpoint",
    "SweepProgress",
    "check_fresh",
    "group_folder",
    "group_meta",
    "resume",
]
