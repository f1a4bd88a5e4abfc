"""Tracks the best value of one logged metric: :class:`Monitor`.

Used by the callbacks that watch a metric (:class:`~nnjax.train.callbacks.EarlyStopping`,
:class:`~nnjax.train.callbacks.ReduceLROnPlateau`, ``ModelCheckpoint``) and by sweeps;
re-exported by :mod:`nnjax.train.callbacks`.

Example:
  >>> m = Monitor("val_accuracy")
  >>> m.mode, m.update({"val_accuracy": 0.5}), m.update({"val_accuracy": 0.4})
  ('max', True, False)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

Logs = Mapping[str, float]


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
      mode: ``"min"``, ``"max"``, or ``"auto"`` (max for accuracies, else min).
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
        if mode == "auto":
            higher = ("acc", "auc", "f1", "precision", "recall")
            mode = "max" if any(h in monitor for h in higher) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
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


__all__ = ["Monitor"]
