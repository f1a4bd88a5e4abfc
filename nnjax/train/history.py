"""The record of a training run: per-epoch train and validation metrics, like Keras."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import jax.numpy as jnp


class History:
    """Per-epoch metrics: ``history.history["loss"]`` is the list of epoch losses.

    Validation metrics carry a ``val_`` prefix (``"val_loss"``, ``"val_accuracy"``);
    ``history.epoch`` lists the (0-based) epoch numbers in the same order. As a
    shorthand, ``history["loss"]`` is ``history.history["loss"]``, ``"val_loss" in
    history`` asks whether that name was logged, iterating yields the names, and
    ``len(history)`` counts the epochs.

    Example:
      >>> h = History()
      >>> h.append(0, {"loss": 0.5, "val_loss": 0.7})
      >>> h.history["loss"], h.epoch
      ([0.5], [0])
      >>> "val_loss" in h, sorted(h), len(h)
      (True, ['loss', 'val_loss'], 1)
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Records the float ``logs`` of ``epoch``; a metric first seen late is NaN-padded.

        Every value is converted before anything is recorded, so a value that is not a
        number leaves the history as it was.

        Raises:
          TypeError: a value that is not a number (e.g. ``"n/a"``), named with its metric.
        """
        floats = {name: _float(name, value) for name, value in logs.items()}
        epoch = int(epoch)
        for name in floats:
            self.history.setdefault(name, [math.nan] * len(self.epoch))
        for name, values in self.history.items():
            values.append(floats.get(name, math.nan))
        self.epoch.append(epoch)

    def amend(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Records what callbacks added to or changed in ``logs`` of the last epoch.

        ``fit`` appends an epoch's logs before ``on_epoch_end`` (so callbacks, e.g.
        ``ModelCheckpoint``, see the epoch in the history) and amends them after it: a
        value a callback put in the shared ``logs`` dict is recorded, as Keras' History
        (the last callback) records it. Only real numbers (Python, NumPy or 0-d
        arrays, bfloat16 included) are recorded; other values are left out.

        Args:
          epoch: the epoch last appended (0-based); any other epoch is an error.
          logs: the epoch's logs after the callbacks ran.

        Raises:
          ValueError: ``epoch`` is not the last epoch appended.

        Example:
          >>> h = History()
          >>> logs = {"loss": 0.5}
          >>> h.append(0, logs)
          >>> logs["lr_seen"] = 0.01
          >>> h.amend(0, logs)
          >>> h.history
          {'loss': [0.5], 'lr_seen': [0.01]}
        """
        if not self.epoch or self.epoch[-1] != int(epoch):
            last = self.epoch[-1] if self.epoch else None
            raise ValueError(f"History.amend: epoch {epoch} is not the last one appended ({last})")
        for name, value in logs.items():
            if not _is_real(value):
                continue
            values = self.history.setdefault(name, [math.nan] * len(self.epoch))
            values[-1] = float(value)

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

    def __contains__(self, name: object) -> bool:
        return name in self.history

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, metrics={sorted(self.history)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict ``{"epoch": [...], "history": {...}}`` (see :meth:`from_dict`).

        Example:
          >>> History.from_dict(History().to_dict()).epoch
          []
        """
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Rebuilds a history from :meth:`to_dict`'s output."""
        history = cls()
        history.epoch = [int(e) for e in data["epoch"]]
        history.history = {k: [float(v) for v in vs] for k, vs in data["history"].items()}
        return history


def _is_real(value: Any) -> bool:
    """A real number: a Python or NumPy scalar, or a 0-d NumPy or JAX array (bfloat16 too)."""
    if isinstance(value, numbers.Real):
        return True
    dtype = getattr(value, "dtype", None)
    if getattr(value, "shape", None) != () or dtype is None:
        return False
    return dtype.kind in "biu" or jnp.issubdtype(dtype, jnp.floating)


def _float(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"History.append: logs[{name!r}] must be a number, got {value!r}") from err


def saved_dict(history: Any, epoch: int, logs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``history.to_dict()`` with epoch ``epoch`` amended by ``logs`` as callbacks left them.

    What a checkpoint saved in ``on_epoch_end`` records: the engine amends the history
    (:meth:`History.amend`, or a sweep's ``SweepHistory.amend``) only after every
    callback's ``on_epoch_end``, so values written by the callbacks before the
    checkpoint are taken from ``logs``. ``history`` is left unchanged.

    Example:
      >>> h = History()
      >>> h.append(0, {"loss": 0.5})
      >>> saved_dict(h, 0, {"loss": 0.5, "gap": 0.1})["history"]
      {'loss': [0.5], 'gap': [0.1]}
    """
    saved = history.to_dict()
    if logs is None or not saved["epoch"] or saved["epoch"][-1] != epoch:
        return saved
    amended = type(history).from_dict(saved)
    amended.amend(epoch, logs)
    return amended.to_dict()


__all__ = ["History", "saved_dict"]
