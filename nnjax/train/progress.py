"""Progress reporting for ``fit``.

``verbose=1``: a tqdm bar per epoch (``tqdm.auto``: a widget in Jupyter) with the
running loss, a "compiling..." line and the compile time, then one line with every
metric (printed, never cut by the terminal width). ``verbose=2``: one line per epoch
(pipes, log files). ``"auto"``: a bar on a terminal or in a notebook, lines elsewhere;
without tqdm installed, lines. Only process 0 of a multi-process run prints.

Example:
  >>> bar = EpochProgress(epoch=0, epochs=1, steps=4, verbose=0)
  >>> bar.update(4, 0.5); bar.close({"loss": 1.0}, seconds=0.1)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping

import jax

Verbose = int | str

#: Seconds between refreshes of the running loss on the bar.
REFRESH_S = 0.5


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _have_tqdm() -> bool:
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_verbose(verbose: Verbose) -> int:
    """The verbosity level: 0 silent, 1 a progress bar, 2 a line per epoch.

    ``"auto"``: 1 (bar) on a terminal or in a notebook with tqdm, else 2 (a line per
    epoch); ``0`` is silent; ``1`` without tqdm falls back to 2. In a multi-process
    run every process but process 0 is silent.

    Example:
      >>> resolve_verbose(2)
      2
    """
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() or _in_notebook() else 2
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    if jax.process_index() != 0:
        return 0
    return 2 if verbose == 1 and not _have_tqdm() else int(verbose)


def format_logs(logs: Mapping[str, float]) -> str:
    """``"loss: 0.1234 - accuracy: 0.9000"`` (small values in scientific notation).

    Example:
      >>> format_logs({"loss": 0.5, "learning_rate": 1e-05})
      'loss: 0.5000 - learning_rate: 1.0000e-05'
    """

    def fmt(v: float) -> str:
        return f"{v:.4e}" if v != 0 and abs(v) < 1e-3 else f"{v:.4f}"

    return " - ".join(f"{name}: {fmt(value)}" for name, value in logs.items())


def say(line: str, verbose: int) -> None:
    """Prints ``line`` (above a running bar) unless ``verbose`` is 0."""
    if verbose == 1:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stdout)
    elif verbose == 2:
        print(line, flush=True)


class EpochProgress:
    """Reports one epoch: ``update(n, loss)`` after each dispatch, ``close(logs)`` at the end.

    Args:
      epoch: the 0-based epoch (shown 1-based).
      epochs: the epoch count.
      steps: updates in the epoch, or None when unknown (an iterable without length).
      verbose: 0, 1 (bar) or 2 (a line per epoch).
    """

    def __init__(self, *, epoch: int, epochs: int, steps: int | None, verbose: int) -> None:
        self.verbose = verbose
        self.prefix = f"Epoch {epoch + 1}/{epochs}"
        self.bar = None
        self._shown = 0.0
        if verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=self.prefix, unit="step", leave=True, file=sys.stdout)

    def wants_loss(self) -> bool:
        """Whether the running loss would be shown now (refreshed every ``REFRESH_S``)."""
        return self.bar is not None and time.monotonic() - self._shown >= REFRESH_S

    def update(self, steps: int, loss: float | None = None) -> None:
        """Advances the bar by ``steps`` updates; shows ``loss`` as the running loss."""
        if self.bar is None:
            return
        if loss is not None:
            self._shown = time.monotonic()
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
        self.bar.update(steps)

    def compiling(self) -> None:
        """Says that the step is being compiled (the bar waits on it)."""
        say(f"{self.prefix}: compiling the training step...", self.verbose)

    def compiled(self, seconds: float) -> None:
        """Reports the compile time (first dispatch, its run included)."""
        say(f"{self.prefix}: compiled in {seconds:.1f} s", self.verbose)

    def close(self, logs: Mapping[str, float], seconds: float | None = None) -> None:
        """Finishes the bar (showing the epoch's loss) and prints its metrics on a line."""
        if self.bar is not None:
            if "loss" in logs:  # the running loss shown last may be a dispatch old
                self.bar.set_postfix_str(f"loss {logs['loss']:.4f}", refresh=False)
            self.bar.close()
        took = "" if seconds is None else f" - {seconds:.1f}s"
        if self.verbose:
            say(f"{self.prefix}{took} - {format_logs(logs)}", 2 if self.bar is None else 1)


__all__ = ["EpochProgress", "format_logs", "resolve_verbose", "say"]
