"""The callback that lowers the learning rate when a monitored metric stalls.

:class:`ReduceLROnPlateau` is re-exported by :mod:`nnjax.train.callbacks`,
:mod:`nnjax.train.monitor` (where it was defined before) and :mod:`nnjax.train`.

Example:
  >>> reduce = ReduceLROnPlateau("val_loss", factor=0.5, patience=2)
  >>> reduce.monitor.mode, reduce.factor, reduce.patience
  ('min', 0.5, 2)
"""

from __future__ import annotations

import math

import numpy as np

from nnjax.train import optimizers
from nnjax.train.callbacks import Callback, Logs, _check_injected
from nnjax.train.monitor import Monitor, _finite, check_mode, resumed_logs
from nnjax.train.validation import check_count


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stalls.

    After ``patience`` epochs without improvement, as Keras' callback (improvement as in
    :class:`EarlyStopping`). In a ``sweep`` each member is counted on its own and only
    its own rate is lowered, as ``fit`` of it alone would. The rate lives in the optimizer state
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
        has no injected ``learning_rate`` (an Optax transformation passed as is) or
        injects it as a schedule (Optax would overwrite each reduction).

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
        self.wait, self.cooling = np.zeros(1, int), np.zeros(1, int)
        self._best = [self.monitor]  # one Monitor per member (one in fit)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Checks that the rate is injected; resets the best values, waits and cooldowns.

        One count per member: one in ``fit``, ``M`` in a ``sweep`` group (each member's
        rate is lowered when its own ``monitor`` value stalls). A resumed run's epochs
        (``resume_from``) are replayed, so the counts are the uninterrupted run's. Its
        reductions are in the resumed optimizer state, except one due after the last
        resumed epoch when the checkpoint was saved before this callback acted (a
        ``ModelCheckpoint`` listed first): that one is made now.
        """
        _check_injected(self)
        members = np.size(self._rate())
        name, mode, delta = self.monitor.monitor, self.monitor.mode, self.monitor.min_delta
        self._best = [Monitor(name, mode, delta) for _ in range(members)]
        self.monitor.best = self._best[0].best
        self.wait, self.cooling = np.zeros(members, int), np.zeros(members, int)
        due, used = np.zeros(members, bool), None
        for _, past in resumed_logs(self.loop, name):
            due, used = self._due(past), past.get("learning_rate")
        if used is not None:  # reduce only where the state still holds the rate used
            # both as History logs them (float32): a float64 state's rate (x64) too
            due &= np.atleast_1d(self._rate()).astype(np.float32) == np.float32(used)
        self._reduce(due)

    def _rate(self) -> float | np.ndarray:
        return self.loop.get_hyperparameter("learning_rate")

    def _reduce(self, due: np.ndarray) -> None:
        """Multiplies the rate of each member where ``due`` by ``factor`` (not below ``min_lr``)."""
        rate = self._rate()
        lr = np.atleast_1d(np.asarray(rate, np.float64))
        new = np.where(due, np.maximum(lr * self.factor, self.min_lr), lr)
        new = np.minimum(new, lr)  # a rate already below min_lr is left as it is
        if np.any(new < lr):
            self.loop.set_hyperparameter("learning_rate", new if np.ndim(rate) else float(new[0]))

    def _due(self, logs: Logs) -> np.ndarray:
        """Counts one epoch per member; where a reduction is due after it (counts reset)."""
        name = self.monitor.monitor
        if name not in logs:
            self.monitor.value(logs)  # a KeyError naming the logged names
        values = np.broadcast_to(np.asarray(logs[name], np.float64), self.wait.shape)
        due = np.array([self._member_due(i, float(v)) for i, v in enumerate(values)])
        self.monitor.best = self._best[0].best
        return due

    def _member_due(self, i: int, value: float) -> bool:
        """Member ``i``'s count after an epoch with ``value`` (Keras' rule)."""
        improved = self._best[i].update({self.monitor.monitor: value})
        if self.cooling[i]:
            self.cooling[i] -= 1
            self.wait[i] = 0
        if improved:
            self.wait[i] = 0
            return False
        if self.cooling[i]:  # still cooling down: a stall is not counted (as in Keras)
            return False
        self.wait[i] += 1
        if self.wait[i] < self.patience:
            return False
        self.wait[i], self.cooling[i] = 0, self.cooldown
        return True

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Multiplies the learning rate by ``factor`` after ``patience`` stalled epochs."""
        self._reduce(self._due(logs or {}))


__all__ = ["ReduceLROnPlateau"]
