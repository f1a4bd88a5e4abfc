"""The callbacks that watch a logged metric, and the :class:`Monitor` they share.

:class:`Monitor` tracks the best value of one metric; it serves :class:`EarlyStopping`
and :class:`ReduceLROnPlateau` (both here), ``ModelCheckpoint`` and sweeps. All three
are re-exported by :mod:`nnjax.train.callbacks` (and :mod:`nnjax.train`).

Example:
  >>> m = Monitor("val_accuracy")
  >>> m.mode, m.update({"val_accuracy": 0.5}), m.update({"val_accuracy": 0.4})
  ('max', True, False)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from nnjax.train import optimizers, sharding
from nnjax.train.callbacks import Callback, Logs, _check_injected
from nnjax.train.history import History
from nnjax.train.validation import check_count

MODES = ("min", "max", "auto")
"""The directions a monitored metric can be watched in."""


def check_mode(owner: str, mode: Any) -> str:
    """``mode`` if it is one of :data:`MODES`; a ``ValueError`` naming ``owner`` otherwise.

    Example:
      >>> check_mode("EarlyStopping", "max")
      'max'
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{owner}: `mode` must be 'min', 'max' or 'auto', got {mode!r}")
    return mode


def _finite(owner: str, name: str, value: Any, *, low: float = 0.0) -> float:
    """``value`` as a float: a finite real number ``>= low`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: `{name}` must be a number, got {value!r} ({type(value).__name__})"
        )
    if not math.isfinite(value) or value < low:
        raise ValueError(f"{owner}: `{name}` must be a finite number >= {low:g}, got {value!r}")
    return float(value)


class Monitor:
    """Tracks the best value of one logged metric.

    Args:
      monitor: the log key, e.g. ``"val_loss"``.
      mode: ``"min"``, ``"max"``, or ``"auto"``: ``"max"`` when the name contains
        ``acc``, ``auc``, ``f1``, ``precision`` or ``recall`` (``"val_accuracy"``,
        ``"top_k_accuracy"``), else ``"min"`` (losses, ``mse``, ``mae``, and any other
        name: pass ``mode="max"`` for a score of your own such as ``"val_iou"``).
      min_delta: the smallest change that counts as an improvement (``>= 0``).

    Raises:
      TypeError: ``monitor`` is not a string, or ``min_delta`` not a number.
      ValueError: an unknown ``mode``; ``min_delta`` negative or not finite.

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
            higher = ("acc", "auc", "f1", "precision", "recall")
            mode = "max" if any(h in monitor for h in higher) else "min"
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

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

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
    with ``resume_from`` counts stalls as the uninterrupted run does.

    Example:
      >>> from types import SimpleNamespace
      >>> from nnjax.train.history import History
      >>> h = History()
      >>> h.append(0, {"loss": 0.5})
      >>> resumed_logs(SimpleNamespace(history=h), "loss")
      [(0, {'loss': 0.5})]
    """
    history = getattr(loop, "history", None)
    if not isinstance(history, History) or name not in history.history:
        return []
    names = list(history.history)
    rows = zip(*(history.history[n] for n in names), strict=True) if names else ()
    return [(e, dict(zip(names, row))) for e, row in zip(history.epoch, rows)]


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs.

    As Keras' callback: an epoch improves when its value beats the best so far by more
    than ``min_delta`` (``value < best - min_delta`` in mode ``"min"``,
    ``value > best + min_delta`` in mode ``"max"``); training stops after the epoch that
    makes ``patience`` epochs in a row without improvement (``patience=0``: the first).
    Keras' ``baseline`` and ``start_from_epoch`` are not supported.

    Args:
      monitor: the logged metric to watch (``"val_loss"``); ``fit`` checks before
        training that it logs this name.
      patience: epochs without improvement before stopping.
      min_delta: the smallest change that counts as an improvement (``>= 0``, in either
        mode).
      mode: ``"min"``, ``"max"`` or ``"auto"`` (the rule: :class:`Monitor`).
      restore_best_weights: put the parameters and model state of the best epoch back
        into the model when training ends, whether or not it stopped early (a host copy
        is kept; donation never touches it). Not after an exception.

    Raises:
      TypeError: ``patience`` not an int, ``min_delta`` not a number, ``monitor`` not a
        string.
      ValueError: ``patience`` or ``min_delta`` negative, a non-finite ``min_delta``, an
        unknown ``mode``; from ``fit``, before training, when ``monitor`` is not a name
        it logs (the message lists those it does).

    Attributes:
      monitor: the :class:`Monitor` (``monitor.monitor`` is the name, ``monitor.best``
        the best value so far).
      stopped_epoch: the (0-based) epoch after which training stopped, or ``None``.
      best_epoch: the epoch with the best monitored value, ``None`` before any.
      wait: epochs since the last improvement.

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
        restore_best_weights: bool = False,
    ) -> None:
        self.patience = check_count("patience", patience)
        check_mode("EarlyStopping", mode)
        self.monitor = Monitor(monitor, mode, _finite("EarlyStopping", "min_delta", min_delta))
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.best_weights: Any = None

    def on_train_begin(self, logs=None):
        """Resets the best value, the wait count and the kept weights.

        A resumed run's epochs (``resume_from``) are replayed: the best value, its epoch
        and the wait count are the uninterrupted run's (the best weights, with
        ``restore_best_weights``, only come from epochs trained in this run).
        """
        self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, None, None, None
        for epoch, past in resumed_logs(self.loop, self.monitor.monitor):
            self._count(epoch, past)

    def _count(self, epoch: int, logs: Logs) -> bool:
        """Counts ``epoch``: whether it improved (else one more stall)."""
        if self.monitor.update(logs):
            self.wait, self.best_epoch = 0, epoch
            return True
        self.wait += 1
        return False

    def on_epoch_end(self, epoch, logs=None):
        """Records an improvement, or counts a stall and stops after ``patience`` of them."""
        if self._count(epoch, logs):
            if self.restore_best_weights:
                state = self.loop.state  # a host copy, with any process count:
                self.best_weights = sharding.to_host((state.params, state.rest))
            return
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.loop.request_stop()

    def on_train_end(self, logs=None):
        """Puts the best epoch's weights back when ``restore_best_weights`` is set."""
        if self.restore_best_weights and self.best_weights is not None:
            self.loop.restore_weights(*self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stalls.

    After ``patience`` epochs without improvement, as Keras' callback (improvement as in
    :class:`EarlyStopping`). The rate lives in the optimizer state
    (``optax.inject_hyperparams``): a change takes effect at the next update and
    compiles nothing.

    Args:
      monitor: the logged metric to watch; ``fit`` checks before training that it logs
        this name.
      factor: the multiplier (< 1).
      patience: epochs without improvement before a reduction.
      min_delta: the smallest change that counts as an improvement.
      cooldown: epochs after a reduction during which stalls are not counted (an
        improvement still updates the best value).
      min_lr: a reduction never takes the rate below this (a rate already below it is
        left as it is).
      mode: ``"min"``, ``"max"`` or ``"auto"`` (see :class:`EarlyStopping`).

    Raises:
      TypeError: ``patience`` or ``cooldown`` not an int, ``factor``, ``min_delta`` or
        ``min_lr`` not a number.
      ValueError: ``factor`` outside ``(0, 1)``; a negative ``patience``, ``cooldown``,
        ``min_delta`` or ``min_lr``; a non-finite number; an unknown ``mode``. From
        ``fit``, before training: ``monitor`` is not a name it logs, or the optimizer
        has no injected ``learning_rate`` (an Optax transformation passed as is).

    Example:
      With ``min_delta=1.0`` every epoch after the first is a stall; after ``patience=2``
      of them the rate is halved (and logged from the next epoch on):

      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> reduce = ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_delta=1.0)
      >>> history = train.fit(model, (x, y), loss="cross_entropy", epochs=5, batch_size=8,
      ...                     learning_rate=0.01, validation_data=(x, y), verbose=0,
      ...                     callbacks=[reduce])
      >>> history.history["learning_rate"]
      [0.01, 0.01, 0.01, 0.005, 0.005]
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ) -> None:
        owner = "ReduceLROnPlateau"
        if not 0.0 < _finite(owner, "factor", factor, low=-math.inf) < 1.0:
            raise ValueError(f"{owner}: factor must lie in (0, 1), got {factor}")
        check_mode(owner, mode)
        self.monitor = Monitor(monitor, mode, _finite(owner, "min_delta", min_delta))
        self.factor = float(factor)
        self.min_lr = optimizers.check_learning_rate(min_lr, name="min_lr", zero_ok=True)
        self.patience = check_count("patience", patience)
        self.cooldown = check_count("cooldown", cooldown)
        self.wait, self.cooling = 0, 0

    def on_train_begin(self, logs=None):
        """Checks that the rate is injected; resets the best value, the wait and cooldown.

        A resumed run's epochs (``resume_from``) are replayed, so the counts are the
        uninterrupted run's. Its reductions are in the resumed optimizer state, except one
        due after the last resumed epoch when the checkpoint was saved before this
        callback acted (a ``ModelCheckpoint`` listed first): that one is made now.
        """
        _check_injected(self)
        self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best
        self.wait, self.cooling = 0, 0
        due, used = False, None
        for _, past in resumed_logs(self.loop, self.monitor.monitor):
            due, used = self._due(past), past.get("learning_rate")
        if due and used is not None and self._rate() == np.float32(used):
            self._reduce()  # the state still holds the rate its last epoch trained with

    def _rate(self) -> float:
        return self.loop.get_hyperparameter("learning_rate")

    def _reduce(self) -> None:
        lr = self._rate()
        new = max(lr * self.factor, self.min_lr)
        if new < lr:
            self.loop.set_hyperparameter("learning_rate", new)

    def _due(self, logs: Logs) -> bool:
        """Counts one epoch; whether a reduction is due after it (the counts then reset)."""
        improved = self.monitor.update(logs)
        if self.cooling:
            self.cooling -= 1
            self.wait = 0
        if improved:
            self.wait = 0
            return False
        if self.cooling:  # still cooling down: a stall is not counted (as in Keras)
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.wait, self.cooling = 0, self.cooldown
        return True

    def on_epoch_end(self, epoch, logs=None):
        """Multiplies the learning rate by ``factor`` after ``patience`` stalled epochs."""
        if self._due(logs):
            self._reduce()


__all__ = [
    "MODES",
    "EarlyStopping",
    "Monitor",
    "ReduceLROnPlateau",
    "check_mode",
    "resumed_logs",
]
