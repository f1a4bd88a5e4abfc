"""The record of a training run: per-epoch train and validation metrics, like Keras."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class History:
    """Per-epoch metrics: ``history.history["loss"]`` is the list of epoch losses.

    Validation metrics carry a ``val_`` prefix (``"val_loss"``, ``"val_accuracy"``);
    ``history.epoch`` lists the (0-based) epoch numbers in the same order.

    Example:
      >>> h = History()
      >>> h.append(0, {"loss": 0.5, "val_loss": 0.7})
      >>> h.history["loss"], h.epoch
      ([0.5], [0])
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Records the float ``logs`` of ``epoch``; a metric first seen late is NaN-padded."""
        for name in logs:
            self.history.setdefault(name, [math.nan] * len(self.epoch))
        for name, values in self.history.items():
            values.append(float(logs.get(name, math.nan)))
        self.epoch.append(int(epoch))

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

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


__all__ = ["History"]
