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
