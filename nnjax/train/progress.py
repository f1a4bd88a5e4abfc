"""Progress reporting for ``fit``: a tqdm bar on a terminal, quiet elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Mapping

Verbose = int | str


def resolve_verbose(verbose: Verbose) -> int:
    """``"auto"`` -> 1 (bar) on a terminal, 0 otherwise; ``0``, ``1``, ``2`` pass through.

    ``0`` is silent, ``1`` shows a progress bar per epoch, ``2`` prints one line per
    epoch.

    Example:
      >>> resolve_verbose(2)
      2
    """
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 0
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def format_logs(logs: Mapping[str, float]) -> str:
    """``"loss: 0.1234 - accuracy: 0.9000"``.

    Example:
      >>> format_logs({"loss": 0.5})
      'loss: 0.5000'
    """
    return " - ".join(f"{name}: {value:.4f}" for name, value in logs.items())


class EpochProgress:
    """Reports one epoch: ``update(n)`` after each dispatch, ``close(logs)`` at the end.

    Example:
      >>> bar = EpochProgress(epoch=0, epochs=1, steps=4, verbose=0)
      >>> bar.update(4); bar.close({"loss": 1.0})
    """

    def __init__(self, *, epoch: int, epochs: int, steps: int, verbose: int) -> None:
        self.verbose = verbose
        self.prefix = f"Epoch {epoch + 1}/{epochs}"
        self.bar = None
        if verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=self.prefix, unit="step", leave=True)

    def update(self, steps: int) -> None:
        """Advances the bar by ``steps`` updates."""
        if self.bar is not None:
            self.bar.update(steps)

    def close(self, logs: Mapping[str, float]) -> None:
        """Shows the epoch's metrics and finishes the line."""
        if self.bar is not None:
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.close()
        elif self.verbose == 2:
            print(f"{self.prefix} - {format_logs(logs)}", flush=True)


__all__ = ["EpochProgress", "format_logs", "resolve_verbose"]
