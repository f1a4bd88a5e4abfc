"""The early-stopping callback, and the :class:`Monitor` the metric watchers share.

:class:`Monitor` tracks the best value of one metric; it serves :class:`EarlyStopping`
(here), ``ReduceLROnPlateau`` (:mod:`nnjax.train.plateau`, re-exported here),
``ModelCheckpoint`` and sweeps. All three are re-exported by
:mod:`nnjax.train.callbacks` (and :mod:`nnjax.train`).

Example:
  >>> m = Monitor("val_accuracy")
  >>> m.mode, m.update({"val_accuracy": 0.5}), m.update({"val_accuracy": 0.4})
  ('max', True, False)
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from nnjax._checks import check_static_bool
from nnjax.io import model as io_model
from nnjax.io import restore
from nnjax.io.errors import CheckpointError
from nnjax.train import sharding
from nnjax.train._monitor_mode import MODES, auto_mode, check_mode
from nnjax.train.callbacks import Callback, Logs
from nnjax.train.history import History
from nnjax.train.validation import check_count


def _finite(owner: str, name: str, value: Any, *, low: float = 0.0) -> float:
    """``value`` as a float: a finite real number ``>= low`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: `{name}` must be a number, got {value!r} ({type(value).__name__})"
        )
    if not math.isfinite(value) or value < low:
        bound = f" >= {low:g}" if low > -math.inf else ""
        raise ValueError(f"{owner}: `{name}` must be a finite number{bound}, got {value!r}")
    return float(value)


class Monitor:
    """Tracks the best value of one logged metric.

    Args:
      monitor: the log key, e.g. ``"val_loss"``.
      mode: ``"min"``, ``"max"``, or ``"auto"``: the direction :func:`auto_mode`
        reads from the name (``"max"`` for ``"val_accuracy"``, ``"min"`` for
        ``"val_accel_loss"``); a name it does not know (a score of your own such as
        ``"val_iou"``) needs ``mode="max"`` or ``"min"``.
      min_delta: the smallest change that counts as an improvement (``>= 0``).

    Raises:
      TypeError: ``monitor`` is not a string, or ``min_delta`` not a number.
      ValueError: an unknown ``mode``; ``mode="auto"`` with a name of unknown
        direction (:func:`auto_mode`); ``min_delta`` negative or not finite.

    Example:
      >>> m = Monitor("val_loss")
      >>> m.update({"val_loss": 1.0}), m.update({"val_loss": 2.0})
      (True, False)
    """

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        if not isinstance(monitor, str):
            raise TypeError(
                f"`monitor` must be the name of a logged metric (a string such as "
                f"'val_loss'), got {monitor!r} ({type(monitor).__name__})"
            )
        min_delta = _finite("Monitor", "min_delta", min_delta)
        if check_mode("Monitor", mode) == "auto":
            mode = auto_mode(monitor)
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: Logs) -> float:
        """The monitored value in ``logs``; a clear error when it is not logged."""
        if self.monitor not in logs:
            raise KeyError(
                f"monitored metric {self.monitor!r} is not logged; available: "
                f"{', '.join(sorted(logs))} (val_* metrics need validation data)"
            )
        return float(logs[self.monitor])

    def improves(self, value: float, than: float | None = None) -> bool:
        """Whether ``value`` beats ``than`` (the best so far by default) by > ``min_delta``."""
        than = self.best if than is None else than
        if self.mode == "min":
            return value < than - self.min_delta
        return value > than + self.min_delta

    def update(self, logs: Logs) -> bool:
        """Records the value in ``logs``; returns whether it improved on the best."""
        value = self.value(logs)
        better = self.improves(value)
        if better:
            self.best = value
        return better


def resumed_logs(loop: Any, name: str) -> list[tuple[int, dict[str, float]]]:
    """``(epoch, logs)`` of the epochs already in ``loop.history`` that logged ``name``.

    A monitoring callback replays them in ``on_train_begin``, so that a run resumed
    with ``resume_from`` counts stalls as the uninterrupted run does. In a sweep (its
    history holds ``logs``, a list of ``(M,)`` arrays per name), each value is the
    group's ``(M,)`` array.

    Example:
      >>> from types import SimpleNamespace
      >>> from nnjax.train.history import History
      >>> h = History()
      >>> h.append(0, {"loss": 0.5})
      >>> resumed_logs(SimpleNamespace(history=h), "loss")
      [(0, {'loss': 0.5})]
    """
    history = getattr(loop, "history", None)
    columns = history.history if isinstance(history, History) else getattr(history, "logs", None)
    if not isinstance(columns, dict) or name not in columns:
        return []
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True) if names else ()
    return [(e, dict(zip(names, row))) for e, row in zip(getattr(history, "epoch", ()), rows)]


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs.

    Keras 3's rule, applied from epoch ``start_from_epoch`` on (the epochs before it are
    not counted at all). An epoch improves when its value beats the best so far by more
    than ``min_delta`` (``value < best - min_delta`` in mode ``"min"``,
    ``value > best + min_delta`` in mode ``"max"``; the first counted epoch does when its
    value is finite). Each counted epoch adds one to ``wait``; an improvement resets it
    to 0, with a ``baseline`` only one that also beats the baseline by more than
    ``min_delta``. Training stops after an epoch that does not improve once
    ``wait >= patience`` (``patience=0``: the first epoch that does not improve); an
    improvement never stops it.

    Args:
      monitor: the logged metric to watch (``"val_loss"``); ``fit`` checks before
        training that it logs this name.
      patience: the ``wait`` from which an epoch that does not improve stops training
        (without ``baseline``: epochs in a row without improvement).
      min_delta: the smallest change that counts as an improvement (``>= 0``, in either
        mode), over the best so far and over ``baseline``.
      mode: ``"min"``, ``"max"`` or ``"auto"`` (the rule: :func:`auto_mode`; a
        metric of your own, such as ``"val_psnr"``, needs ``"max"`` or ``"min"``).
      baseline: a value to beat, or ``None``. It is not a starting best: epochs that
        improve on each other still improve (and set ``best_epoch``), but ``wait`` keeps
        counting until one beats the baseline. If none does, training stops at the first
        epoch that does not improve once ``patience`` epochs have been counted.
      restore_best_weights: put the parameters and model state of the best counted
        epoch (whether or not it beat ``baseline``) back into the model when training
        ends, whether or not it stopped early (a host copy is kept; donation never
        touches it). Not after an exception, nor when no epoch was counted. In a run
        resumed with ``resume_from``, a best epoch among the resumed ones is put back
        from its checkpoint in that folder (as the uninterrupted run would); where that
        checkpoint is gone (``max_to_keep`` pruned it) or unreadable, a warning says so
        at the start, and unless a later epoch improves the model keeps its last
        weights.
      start_from_epoch: the first (0-based) epoch counted: a warm-up before it neither
        improves nor stalls, so training never stops before it (past the last epoch:
        nothing is counted, nothing stops or is restored).

    Raises:
      TypeError: ``patience`` or ``start_from_epoch`` not an int, ``min_delta`` or
        ``baseline`` not a number (a bool is not one), ``monitor`` not a string.
      ValueError: ``patience``, ``start_from_epoch`` or ``min_delta`` negative, a
        non-finite ``min_delta`` or ``baseline``, an unknown ``mode``, ``mode="auto"``
        for a name of unknown direction (here, before training); from ``fit``,
        before training, when ``monitor`` is not a name it logs (the message lists
        those it does).

    Attributes:
      monitor: the :class:`Monitor` (``monitor.monitor`` is the name, ``monitor.best``
        the best value so far).
      baseline: the value to beat (a float), or ``None``.
      start_from_epoch: the first epoch counted.
      stopped_epoch: the (0-based) epoch after which training stopped, or ``None``.
      best_epoch: the counted epoch with the best monitored value, ``None`` before any.
      wait: epochs counted since the last one that reset it (see above).

    Example:
      With ``min_delta=1.0`` no epoch after the first improves enough, so training stops
      after epoch 1 and the weights of epoch 0 are put back:

      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> stop = EarlyStopping("val_loss", patience=1, min_delta=1.0,
      ...                      restore_best_weights=True)
      >>> history = train.fit(model, (x, y), loss="cross_entropy", epochs=10, batch_size=8,
      ...                     validation_data=(x, y), verbose=0, callbacks=[stop])
      >>> len(history.history["val_loss"]), stop.best_epoch, stop.stopped_epoch
      (2, 0, 1)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        owner = "EarlyStopping"
        self.patience = check_count("patience", patience)
        self.start_from_epoch = check_count("start_from_epoch", start_from_epoch)
        check_mode(owner, mode)
        min_delta = _finite(owner, "min_delta", min_delta)
        try:
            self.monitor = Monitor(monitor, mode, min_delta)
        except ValueError as err:  # a name of unknown direction
            raise ValueError(f"{owner}: {err}") from None
        self.baseline = None
        if baseline is not None:
            self.baseline = _finite(owner, "baseline", baseline, low=-math.inf)
        self.restore_best_weights = check_static_bool(
            owner, "restore_best_weights", restore_best_weights
        )
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.best_weights: Any = None

    def judge(
        self, monitor: Monitor, wait: int, epoch: int, value: float
    ) -> tuple[bool, int, bool] | None:
        """The rule for one epoch: ``(improved, wait after it, stop after it)``.

        ``monitor`` holds the best value so far (updated in place), ``wait`` the count
        before the epoch; ``None`` for an epoch before ``start_from_epoch`` (not
        counted). Sweeps apply it to each member on its own.

        Example:
          >>> stop, m = EarlyStopping("loss", patience=1, baseline=0.5), Monitor("loss")
          >>> stop.judge(m, 0, 0, 0.9), stop.judge(m, 1, 1, 0.8), stop.judge(m, 2, 2, 0.85)
          ((True, 1, False), (True, 2, False), (False, 3, True))
        """
        if epoch < self.start_from_epoch:
            return None
        wait += 1
        if monitor.improves(value):
            monitor.best = value
            beaten = self.baseline is None or monitor.improves(value, self.baseline)
            return True, 0 if beaten else wait, False
        return False, wait, wait >= self.patience

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Resets the best value, the wait count and the kept weights.

        A resumed run's epochs (``resume_from``) are replayed: the best value, its epoch
        and the wait count are the uninterrupted run's, and a run that had stopped after
        its last recorded epoch trains no more; with ``restore_best_weights`` a resumed
        best epoch's weights are read from its checkpoint.
        """
        self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, None, None, None
        stopped = None
        for epoch, past in resumed_logs(self.loop, self.monitor.monitor):
            stopped = epoch if self._count(epoch, past)[1] else None
        if stopped is not None:  # the run had stopped after its last epoch: no more
            self.stopped_epoch = stopped
            self.loop.request_stop()
        if self.restore_best_weights and self.best_epoch is not None:
            self.best_weights = _resumed_weights(self.loop, self.best_epoch)

    def _count(self, epoch: int, logs: Logs) -> tuple[bool, bool]:
        """Counts ``epoch``: ``(improved, stop after it)``."""
        verdict = self.judge(self.monitor, self.wait, epoch, self.monitor.value(logs))
        if verdict is None:
            return False, False
        improved, self.wait, stop = verdict
        if improved:
            self.best_epoch = epoch
        return improved, stop

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Records an improvement, or counts a stall and stops after ``patience`` of them."""
        improved, stop = self._count(epoch, logs or {})
        if improved and self.restore_best_weights:
            state = self.loop.state  # a host copy, with any process count:
            self.best_weights = sharding.to_host((state.params, state.rest))
        if stop:
            self.stopped_epoch = epoch
            self.loop.request_stop()

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Puts the best epoch's weights back when ``restore_best_weights`` is set."""
        if self.restore_best_weights and self.best_weights is not None:
            self.loop.restore_weights(*self.best_weights)


def _resumed_weights(loop: Any, epoch: int) -> tuple[Any, Any] | None:
    """``(params, rest)`` of a resumed epoch's checkpoint, or None (with a warning)."""
    folder = loop.resumed_from
    if folder is None:  # not resumed: the epoch was trained in this run
        return None
    template = {"params": loop.state.params, "rest": loop.state.rest}
    try:
        parts, _ = io_model.open_checkpoint(
            folder, lambda step: restore.read_parts(step, template), epoch=epoch
        )
    except (FileNotFoundError, CheckpointError) as err:
        warnings.warn(
            f"EarlyStopping(restore_best_weights=True): the best epoch so far, {epoch + 1}, "
            f"was trained before the resume and its weights could not be read from "
            f"{folder} ({err}); unless a later epoch improves on it, the model keeps its "
            "last weights (keep more checkpoints with ModelCheckpoint(max_to_keep=...))",
            stacklevel=2,
        )
        return None
    return parts["params"], parts["rest"]


# Defined in nnjax.train.plateau; re-exported so that ``nnjax.train.monitor`` keeps
# serving it. Imported last: it builds on the names above.
from nnjax.train.plateau import ReduceLROnPlateau  # noqa: E402

__all__ = [
    "MODES",
    "EarlyStopping",
    "Monitor",
    "ReduceLROnPlateau",
    "auto_mode",
    "check_mode",
    "resumed_logs",
]
