"""Keras-like callbacks for :func:`nnjax.train.fit`.

A callback sees a read-only view of the run through ``self.loop`` (set before training
starts; :class:`nnjax.train.driver.RunView`): ``loop.model``, ``loop.state`` (the
``TrainState`` of params, optimizer state and other model state), ``loop.history``,
``loop.epoch``, and acts through requests: ``loop.request_stop()`` (or
``loop.stop_training = True``), ``loop.set_hyperparameter(name, value)``,
``loop.restore_weights(params, rest)``.
Checkpointing lives in :mod:`nnjax.train.checkpoint` (:class:`ModelCheckpoint`), the
tracking of a monitored metric in :mod:`nnjax.train.monitor` (:class:`Monitor`, re-exported).

Example:
  >>> import numpy as np
  >>> from flax import nnx
  >>> from nnjax import nn, train
  >>> class PrintLearningRate(Callback):
  ...     def on_epoch_end(self, epoch, logs=None):
  ...         print(epoch, logs["learning_rate"])
  >>> x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int32)
  >>> _ = train.fit(nn.MLP(2, (4,), 2, rngs=nnx.Rngs(0)), (x, y), loss="cross_entropy",
  ...               epochs=2, learning_rate=0.01, verbose=0, callbacks=[PrintLearningRate()])
  0 0.01
  1 0.01
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nnjax.train import sharding
from nnjax.train.monitor import Logs, Monitor, _finite
from nnjax.train.optimizers import check_learning_rate
from nnjax.train.validation import check_count


class Callback:
    """Base class: override any hook; each does nothing by default.

    Hooks, in order: ``on_train_begin`` (after ``fit`` has checked that every
    monitored name will be logged); per epoch ``on_epoch_begin``, ``on_dispatch_end``
    after each compiled dispatch of up to ``steps_per_dispatch`` updates (``batch`` is
    that dispatch's device input: a stacked ``Batch`` with its step count, or, for
    device-resident data, the data, the epoch's ``(D, K, B)`` row indices and masks, the
    dispatch's block number and step count), ``on_epoch_end`` (``logs`` holds the
    epoch's train and ``val_`` metrics and the learning rate); ``on_train_end``.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> class StopAfterTwo(Callback):
      ...     def on_epoch_end(self, epoch, logs=None):
      ...         if epoch >= 1:
      ...             self.loop.request_stop()
      >>> history = train.fit(model, (x, y), loss="cross_entropy", epochs=10, batch_size=8,
      ...                     verbose=0, callbacks=[StopAfterTwo()])
      >>> len(history.history["loss"])
      2
    """

    loop: Any = None

    def set_loop(self, loop: Any) -> None:
        """Called by ``fit`` before ``on_train_begin``."""
        self.loop = loop

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Before epoch ``epoch`` (0-based)."""

    def on_dispatch_end(self, step: int, batch: Any) -> None:
        """After a dispatch; ``step`` counts the updates done so far in this run."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """After epoch ``epoch`` with its metrics."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """After training (also after an early stop)."""


def as_callbacks(callbacks: Iterable[Callback] | None) -> list[Callback]:
    """``callbacks`` as a list, checked: ``None`` is none (as in Keras).

    Raises:
      TypeError: a lone callback (wrap it in a list), something not iterable, or an
        item that is not a :class:`Callback` instance.

    Example:
      >>> as_callbacks(None), len(as_callbacks([Callback()]))
      ([], 1)
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        name = type(callbacks).__name__
        raise TypeError(
            f"callbacks must be a list of Callback instances, got one {name}; wrap it: "
            f"callbacks=[{name}(...)]"
        )
    if isinstance(callbacks, str | Mapping) or not isinstance(callbacks, Iterable):
        raise TypeError(
            f"callbacks must be a list of Callback instances, got {type(callbacks).__name__}"
        )
    found = list(callbacks)
    for cb in found:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
    return found


class CallbackList(Callback):
    """Calls every hook on each callback in order.

    Args:
      callbacks: the callbacks, called in this order (``None``: none).

    Raises:
      TypeError: ``callbacks`` is not a list of :class:`Callback` instances
        (:func:`as_callbacks`; ``None`` is an empty list).

    Example:
      >>> class Say(Callback):
      ...     def __init__(self, word):
      ...         self.word = word
      ...     def on_epoch_end(self, epoch, logs=None):
      ...         print(self.word, epoch, logs)
      >>> CallbackList([Say("first"), Say("second")]).on_epoch_end(0, {"loss": 0.5})
      first 0 {'loss': 0.5}
      second 0 {'loss': 0.5}
    """

    def __init__(self, callbacks: Iterable[Callback] | None = ()) -> None:
        self.callbacks = as_callbacks(callbacks)

    def set_loop(self, loop: Any) -> None:
        """Hands ``loop`` to every callback."""
        for cb in self.callbacks:
            cb.set_loop(loop)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Calls ``on_train_begin`` on every callback."""
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Calls ``on_epoch_begin`` on every callback."""
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_dispatch_end(self, step: int, batch: Any) -> None:
        """Calls ``on_dispatch_end`` on every callback."""
        for cb in self.callbacks:
            cb.on_dispatch_end(step, batch)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Calls ``on_epoch_end`` on every callback."""
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Calls ``on_train_end`` on every callback."""
        for cb in self.callbacks:
            cb.on_train_end(logs)


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
      monitor: the metric to watch (``"val_loss"``).
      patience: epochs without improvement before stopping.
      min_delta: the smallest change that counts as an improvement.
      mode: ``"min"``, ``"max"`` or ``"auto"``.
      restore_best_weights: put the parameters and model state of the best epoch back
        into the model at the end (a host copy is kept; donation never touches it).

    Raises:
      TypeError: ``patience`` not an int, ``min_delta`` not a number, ``monitor`` not a
        string.
      ValueError: ``patience`` or ``min_delta`` negative, a non-finite ``min_delta``, an
        unknown ``mode``.

    Attributes:
      stopped_epoch: the epoch after which training stopped, or ``None``.
      best_epoch: the epoch with the best monitored value.

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
        self.monitor = Monitor(monitor, mode, _finite("EarlyStopping", "min_delta", min_delta))
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        """Resets the best value, the wait count and the kept weights."""
        self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        """Records an improvement, or counts a stall and stops after ``patience`` of them."""
        if self.monitor.update(logs):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                state = self.loop.state
                self.best_weights = sharding.to_host(
                    (state.params, state.rest)
                )  # any process count
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.loop.request_stop()

    def on_train_end(self, logs=None):
        """Puts the best epoch's weights back when ``restore_best_weights`` is set."""
        if self.restore_best_weights and self.best_weights is not None:
            self.loop.restore_weights(*self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stalls.

    After ``patience`` epochs without improvement (Keras' callback). The rate lives in the
    optimizer state: no recompile.

    Args:
      monitor: the metric to watch.
      factor: the multiplier (< 1).
      patience: epochs without improvement before a reduction.
      min_delta: the smallest change that counts as an improvement.
      cooldown: epochs to wait after a reduction before counting again.
      min_lr: the rate never goes below this.
      mode: ``"min"``, ``"max"`` or ``"auto"``.

    Raises:
      TypeError: ``patience`` or ``cooldown`` not an int, ``factor``, ``min_delta`` or
        ``min_lr`` not a number.
      ValueError: ``factor`` outside ``(0, 1)``; a negative ``patience``, ``cooldown``,
        ``min_delta`` or ``min_lr``; a non-finite number; an unknown ``mode``.

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
        self.monitor = Monitor(monitor, mode, _finite(owner, "min_delta", min_delta))
        self.factor = float(factor)
        self.min_lr = check_learning_rate(min_lr, name="min_lr", zero_ok=True)
        self.patience = check_count("patience", patience)
        self.cooldown = check_count("cooldown", cooldown)

    def on_train_begin(self, logs=None):
        """Resets the best value, the wait count and the cooldown."""
        self.monitor.best = Monitor(self.monitor.monitor, self.monitor.mode).best
        self.wait, self.cooling = 0, 0

    def on_epoch_end(self, epoch, logs=None):
        """Multiplies the learning rate by ``factor`` after ``patience`` stalled epochs."""
        improved = self.monitor.update(logs)
        if self.cooling:
            self.cooling -= 1
            self.wait = 0
        if improved:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            lr = self.loop.get_hyperparameter("learning_rate")
            new = max(lr * self.factor, self.min_lr)
            if new < lr:
                self.loop.set_hyperparameter("learning_rate", new)
            self.wait, self.cooling = 0, self.cooldown


class LearningRateScheduler(Callback):
    """Sets the learning rate before each epoch to ``schedule(epoch, lr)`` (Keras' callback).

    The rate lives in the optimizer state (``optax.inject_hyperparams``): changing it
    compiles nothing. ``fit`` injects it for an optimizer given by name (``"adam"``)
    or as an Optax factory (``optax.sgd``); a transformation built beforehand
    (``optax.sgd(0.1)``) has a fixed rate unless it was built with
    ``optax.inject_hyperparams``. Each epoch's rate is logged as ``learning_rate``
    (``history.history["learning_rate"]``).

    Args:
      schedule: ``schedule(epoch, lr) -> new_lr``, called at the start of every epoch
        with the 0-based epoch (an ``int``, as ``fit`` counts epochs) and the current
        rate (a Python ``float``, read back from the float32 optimizer state); its
        result is converted with ``float`` and must be finite and ``>= 0``.

    Attributes:
      schedule: the ``schedule`` passed in.

    Raises:
      ValueError: at the start of an epoch, when the optimizer has no injected
        ``learning_rate`` (an Optax transformation passed as is), or ``schedule``
        returns a negative or non-finite rate.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
      >>> history = train.fit(model, (x, y), loss="cross_entropy", epochs=3, batch_size=8,
      ...                     learning_rate=0.1, verbose=0, callbacks=[halve])
      >>> history.history["learning_rate"]
      [0.1, 0.05, 0.025]
    """

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        """Sets the learning rate to ``schedule(epoch, lr)``."""
        lr = self.loop.get_hyperparameter("learning_rate")
        self.loop.set_hyperparameter("learning_rate", float(self.schedule(epoch, lr)))


# The logging callbacks live in nnjax.train.loggers; re-exported here so that
# ``from nnjax.train.callbacks import CSVLogger`` keeps working. Imported last: loggers
# subclasses Callback, defined above.
from nnjax.train.loggers import CSVLogger, TensorBoard  # noqa: E402

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LearningRateScheduler",
    "Monitor",
    "ReduceLROnPlateau",
    "TensorBoard",
    "as_callbacks",
]
