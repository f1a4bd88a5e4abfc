"""Keras-like callbacks for :func:`nnjax.train.fit`.

A callback sees a read-only view of the run through ``self.loop`` (set before training
starts; :class:`nnjax.train.driver.RunView`): ``loop.model``, ``loop.state`` (the
``TrainState`` of params, optimizer state and other model state), ``loop.history``,
``loop.epoch``, and acts through requests: ``loop.request_stop()`` (or
``loop.stop_training = True``), ``loop.set_hyperparameter(name, value)``,
``loop.restore_weights(params, rest)``. See also :mod:`nnjax.train.checkpoint`,
:mod:`nnjax.train.loggers` (:class:`CSVLogger`, :class:`TensorBoard`) and
:mod:`nnjax.train.monitor` (:class:`EarlyStopping`, :class:`Monitor`) and
:mod:`nnjax.train.plateau` (:class:`ReduceLROnPlateau`), all re-exported here.

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

import inspect
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nnjax.train import optax_checks, optimizers

if TYPE_CHECKING:
    from nnjax.train.driver import RunView

Logs = dict[str, Any]


class Callback:
    """Base class: override any hook; each does nothing by default.

    Hooks, in order: ``on_train_begin`` (after ``fit`` has checked that every
    monitored name will be logged); per epoch ``on_epoch_begin``, ``on_dispatch_end``
    after each compiled dispatch of up to ``steps_per_dispatch`` updates (``batch`` is
    that dispatch's device input: a stacked ``Batch`` with its step count, or, for
    device-resident data, the data, the epoch's ``(D, K, B)`` row indices and masks, the
    dispatch's block number and step count), ``on_epoch_end`` (``logs`` holds the
    epoch's train and ``val_`` metrics and the learning rate, already recorded in
    ``loop.history``; a name a callback adds reaches the callbacks after it, and
    ``History`` once every callback has run);
    ``on_train_end`` (not after an exception).

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

    loop: RunView = None  # type: ignore[assignment]  # set by fit/sweep before any hook

    writes_logs: tuple[str, ...] = ()
    """Names this callback puts into the epoch's ``logs`` in ``on_epoch_end``.

    ``fit`` checks before training that every monitored name (``EarlyStopping``,
    ``ReduceLROnPlateau``, ``ModelCheckpoint(monitor=...)``) will be logged: declared
    here, a name may be monitored by the callbacks listed after this one.
    """

    def output_paths(self) -> tuple[str, ...]:
        """The files or folders this callback writes, which no other callback may share.

        ``fit`` and ``sweep`` refuse, before training, a list in which two callbacks
        name the same path (``~`` expanded, symbolic links resolved): two
        ``ModelCheckpoint`` callbacks would prune each other's step folders, two
        ``CSVLogger`` callbacks truncate one file. The base class writes nothing: ``()``.
        """
        return ()

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
      ValueError: one instance listed twice (its hooks would run twice an epoch), or two
        callbacks writing one path (:meth:`Callback.output_paths`).

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
    writers: dict[str, int] = {}
    for i, cb in enumerate(found):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
        first = next(j for j, other in enumerate(found) if other is cb)
        if first != i:
            raise ValueError(
                f"callbacks[{i}] is callbacks[{first}] again (one {type(cb).__name__}): its "
                "hooks would run twice an epoch; list each callback once"
            )
        for path in cb.output_paths():
            key = os.path.realpath(os.path.expanduser(path))
            if key in writers:
                j = writers[key]
                raise ValueError(
                    f"callbacks[{j}] ({type(found[j]).__name__}) and callbacks[{i}] "
                    f"({type(cb).__name__}) both write {path}: each would destroy the "
                    "other's output; give each its own file or folder"
                )
            writers[key] = i
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


def _check_injected(callback: Callback) -> None:
    """A ``ValueError`` naming ``callback`` unless the run's optimizer injects a rate it can set.

    None injected, several parts injecting one (ambiguous), or a rate injected as a
    schedule (``inject_hyperparams(optax.sgd)(learning_rate=schedule)``: Optax recomputes
    it at each update, overwriting what the callback sets).
    """
    name = type(callback).__name__
    opt_state = getattr(getattr(callback.loop, "state", None), "opt_state", None)
    if opt_state is None:
        return
    try:
        optimizers.get_hyperparameter(opt_state, "learning_rate")
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    if optax_checks.is_scheduled(opt_state, "learning_rate"):
        raise ValueError(
            f"{name}: the optimizer's injected learning_rate is a schedule "
            "(optax.inject_hyperparams(...)(learning_rate=<schedule>)); optax recomputes it "
            f"at every update, so {name} could not change it; inject a number "
            "(learning_rate=0.1) for the callback to set, or drop the callback"
        )


class LearningRateScheduler(Callback):
    """Sets the learning rate before each epoch to ``schedule(epoch, lr)`` (Keras' callback).

    The rate lives in the optimizer state (``optax.inject_hyperparams``): changing it
    compiles nothing. ``fit`` injects it for an optimizer given by name (``"adam"``)
    or as an Optax factory (``optax.sgd``), not into one built beforehand
    (``optax.sgd(0.1)``). Each epoch's rate is logged as ``learning_rate``.

    Args:
      schedule: ``schedule(epoch, lr) -> new_lr``, called at the start of every epoch
        with the 0-based epoch (an ``int``, as ``fit`` counts epochs) and the current
        rate (a Python ``float``, read back from the float32 optimizer state); or, as
        Keras also takes, ``schedule(epoch) -> new_lr`` when it takes one positional
        argument, so an Optax schedule (``optax.cosine_decay_schedule(0.1, 10)``) works
        as is, counting epochs. Its result (a Python or NumPy number, or a 0-d array
        such as an Optax schedule returns) must be finite and ``>= 0``. In a ``sweep``,
        ``schedule(epoch, lr)`` is called once per member with that member's rate;
        ``schedule(epoch)`` sets every member's.

    Attributes:
      schedule: the ``schedule`` passed in.

    Raises:
      TypeError: ``schedule`` is not callable or takes no positional argument; at the
        start of an epoch, it returned something not a number.
      ValueError: before training, when the optimizer has no injected
        ``learning_rate`` (an Optax transformation passed as is), or injects it as a
        schedule (Optax would overwrite the callback's rate); at the start of an
        epoch, when ``schedule`` returns a negative or non-finite rate.

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

    def __init__(self, schedule: Callable[..., Any]) -> None:
        if not callable(schedule):
            raise TypeError(
                "LearningRateScheduler: `schedule` must be a function (epoch, lr) -> rate, "
                f"got {schedule!r} ({type(schedule).__name__})"
            )
        count = _positional_count(schedule)
        if count == 0:
            raise TypeError(
                f"LearningRateScheduler: `schedule` {schedule!r} takes no positional "
                "argument; it is called as schedule(epoch, lr) or schedule(epoch)"
            )
        self.schedule = schedule
        self._takes_rate = count >= 2

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Checks that the optimizer injects the learning rate."""
        _check_injected(self)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Sets the learning rate to ``schedule(epoch, lr)`` (per member in a sweep)."""
        lr: Any = self.loop.get_hyperparameter("learning_rate")  # (M,) in a sweep group
        if self._takes_rate and np.ndim(lr):  # a sweep group: each member's own rate
            rate: Any = np.array([self._rate(epoch, float(member)) for member in lr])
        else:
            rate = self._rate(epoch, lr if self._takes_rate else None)
        self.loop.set_hyperparameter("learning_rate", rate)

    def _rate(self, epoch: int, lr: float | None) -> float:
        """``schedule(epoch, lr)``, or ``schedule(epoch)`` when ``lr`` is None, checked."""
        rate = self.schedule(epoch) if lr is None else self.schedule(epoch, lr)
        if getattr(rate, "shape", None) == ():  # a 0-d NumPy or JAX array
            rate = float(rate)
        given = f"{epoch}" if lr is None else f"{epoch}, {lr:g}"
        call = f"LearningRateScheduler: schedule({given}) returned {rate!r}"
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"{call} ({type(rate).__name__}); return the new learning_rate")
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"{call}; a learning_rate must be a finite number >= 0")
        return float(rate)


def _positional_count(function: Callable) -> int:
    """How many positional arguments ``function`` takes (2 for ``*args`` or unknown)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return 2
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return 2
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(kind in positional for kind in kinds)


# The logging callbacks live in nnjax.train.loggers, the metric-watching ones in
# nnjax.train.monitor (EarlyStopping, with their Monitor) and nnjax.train.plateau;
# re-exported here so that ``from nnjax.train.callbacks import EarlyStopping`` keeps
# working. Imported last: they subclass Callback, defined above.
from nnjax.train.loggers import CSVLogger, TensorBoard  # noqa: E402
from nnjax.train.monitor import EarlyStopping, Monitor  # noqa: E402
from nnjax.train.plateau import ReduceLROnPlateau  # noqa: E402

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
