"""Shared plotting helper for the classic examples (matplotlib, Agg backend)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def saved_axes(out: str, filename: str, figsize: tuple[float, float] = (5, 3)) -> Iterator:
    """Yields fresh matplotlib axes; on exit saves the figure to ``out/filename``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    fig, ax = plt.subplots(figsize=figsize)
    try:
        yield ax
        fig.savefig(os.path.join(out, filename), dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
