"""Unit tests of ``benchmarks/_paired.py``: per-round ratios and their quartiles."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import _paired


def test_quartiles_match_numpy_and_reject_no_samples():
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    assert _paired.quartiles(samples) == pytest.approx(tuple(np.percentile(samples, [25, 50, 75])))
    assert _paired.quartiles([7.0]) == (7.0, 7.0, 7.0)
    with pytest.raises(ValueError, match="empty"):
        _paired.quartiles([])


def test_paired_ratio_cancels_a_drift_that_hides_the_difference_unpaired():
    rng = np.random.default_rng(0)
    # The machine slows down 1.5x halfway; the peer is 0.8x the baseline in every round.
    drift = np.where(np.arange(21) < 10, 1.0, 1.5) * rng.uniform(0.95, 1.05, 21)
    base = list(drift * 0.010)
    peer = list(drift * 0.008)
    peer[10] *= 1.5  # one round where only the peer was disturbed
    q1, median, q3 = _paired.paired_ratio(peer, base)
    assert median == pytest.approx(0.8) and q1 == pytest.approx(0.8)
    assert q3 == pytest.approx(0.8)
    # Unpaired, the drift hides the difference: the two inter-quartile ranges overlap.
    assert _paired.quartiles(peer)[2] > _paired.quartiles(base)[0]


def test_paired_ratio_needs_samples_from_the_same_rounds():
    assert _paired.paired_ratio([1.0, 2.0], [1.0]) is None
    assert _paired.paired_ratio([], []) is None
    assert _paired.paired_ratio([2.0, 6.0, 3.0, 4.0], [1.0, 2.0, 1.0, 1.0]) == pytest.approx(
        (2.75, 3.0, 3.25)
    )


def test_format_paired():
    assert _paired.format_paired((0.801, 0.856, 0.934)) == "0.86 (0.80-0.93)"
    assert _paired.format_paired(None) == "-"
