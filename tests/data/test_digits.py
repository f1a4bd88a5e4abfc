"""scikit-learn's bundled digits, split deterministically."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nnjax.data import load_digits

datasets = pytest.importorskip("sklearn.datasets")


def test_split_is_a_seeded_partition_of_sklearn_digits():
    (x, y), (xt, _) = load_digits(seed=3)
    assert x.shape == (1438, 8, 8) and xt.shape == (359, 8, 8)
    assert x.dtype == y.dtype == np.uint8 and x.max() == 16
    ref = datasets.load_digits()
    order = np.random.default_rng(3).permutation(1797)
    np.testing.assert_array_equal(xt, ref.images[order[:359]])
    np.testing.assert_array_equal(y, ref.target[order[359:]])
    (x2, _), _ = load_digits(seed=3)
    (x3, _), _ = load_digits(seed=4)
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, x3)


def test_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction must be in"):
        load_digits(test_fraction=1.0)


def test_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install nnjax\[examples\]"):
        load_digits()


@pytest.mark.parametrize(
    ("fraction", "split"), [(1e-4, "test"), (0.0002, "test"), (0.9999, "training")]
)
def test_fraction_that_empties_a_split_raises(fraction, split):
    """W15: an empty test or training split was returned silently."""
    with pytest.raises(ValueError, match=rf"test_fraction={fraction!r} leaves the {split} split"):
        load_digits(test_fraction=fraction)


def test_smallest_fractions_give_one_example():
    _, (xt, _) = load_digits(test_fraction=1 / 1797)
    (x, _), _ = load_digits(test_fraction=1 - 1 / 1797)
    assert len(xt) == 1 and len(x) == 1


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"test_fraction": "0.2"}, TypeError, "`test_fraction` must be a real number, got '0.2'"),
        ({"test_fraction": None}, TypeError, "`test_fraction` must be a real number, got None"),
        ({"test_fraction": float("nan")}, ValueError, "`test_fraction` must be finite, got nan"),
        ({"seed": -1}, ValueError, "load_digits: `seed` must be a non-negative int, got -1"),
        ({"seed": 1.5}, ValueError, r"load_digits: `seed` .* got 1\.5"),
    ],
)
def test_bad_arguments_are_named(kw, error, match):
    """U3, U13."""
    with pytest.raises(error, match=match):
        load_digits(**kw)
