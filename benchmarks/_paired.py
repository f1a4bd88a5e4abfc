"""Paired ratios: a peer's samples over the baseline's, round by round.

:func:`_harness.time_calls` takes one sample of every call per round, the calls back
to back. A change in the machine's speed (a shared 2-core VM drifted by up to 40% over
minutes, with the inter-quartile range of one call 10-20% of its median) then reaches
every call of a round alike, and the ratio of two calls' samples in the same round
cancels it. The quartiles of those per-round ratios (:func:`paired_ratio`) say how far
apart two calls are and how sure that is: an inter-quartile range that excludes 1 is a
difference the drift did not make; the ratio of the two medians cannot tell.

Example:
  >>> paired_ratio([2.0, 4.0, 3.0], [1.0, 2.0, 1.5])
  (2.0, 2.0, 2.0)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` of ``samples`` (inclusive method, numpy's default).

    Example:
      >>> quartiles([1.0, 2.0, 3.0, 4.0, 5.0])
      (2.0, 3.0, 4.0)
    """
    if not samples:
        raise ValueError("quartiles: `samples` is empty")
    if len(samples) < 2:
        return samples[0], samples[0], samples[0]
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q2, q3


def paired_ratio(
    samples: Sequence[float], baseline: Sequence[float]
) -> tuple[float, float, float] | None:
    """``(q1, median, q3)`` of ``samples[r] / baseline[r]`` over the rounds ``r``.

    Args:
      samples: one call's seconds per call, one per round, in round order.
      baseline: the baseline call's, from the same rounds.

    Returns:
      The quartiles of the per-round ratios, or ``None`` when the two were not sampled
      in the same rounds (different lengths, or none).
    """
    if not samples or len(samples) != len(baseline):
        return None
    return quartiles([s / b for s, b in zip(samples, baseline, strict=True)])


def format_paired(ratio: Sequence[float] | None) -> str:
    """``"0.86 (0.80-0.93)"`` from ``(q1, median, q3)`` (a tuple, or a list read from JSON).

    Example:
      >>> format_paired((0.8, 0.86, 0.93)), format_paired(None)
      ('0.86 (0.80-0.93)', '-')
    """
    if ratio is None:
        return "-"
    q1, median, q3 = ratio
    return f"{median:.2f} ({q1:.2f}-{q3:.2f})"
