"""MinMaxScaler and StandardScaler against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest

from nnjax.data import MinMaxScaler, StandardScaler

sk = pytest.importorskip("sklearn.preprocessing")


@pytest.fixture
def train_test():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (50, 4)) * np.array([1.0, 10.0, 0.1, 1.0])
    train[:, 3] = 7.0  # a constant feature
    test = rng.normal(3.0, 2.0, (20, 4))
    return train, test


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (MinMaxScaler(), sk.MinMaxScaler()),
        (MinMaxScaler(feature_range=(-1.0, 1.0)), sk.MinMaxScaler(feature_range=(-1.0, 1.0))),
        (StandardScaler(), sk.StandardScaler()),
    ],
)
def test_matches_sklearn_fit_on_train_apply_to_test(ours, theirs, train_test):
    train, test = train_test
    np.testing.assert_allclose(ours.fit_transform(train), theirs.fit_transform(train), atol=1e-12)
    np.testing.assert_allclose(ours.transform(test), theirs.transform(test), atol=1e-12)
    np.testing.assert_allclose(
        ours.inverse_transform(test), theirs.inverse_transform(test), atol=1e-12
    )
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(test)), test, atol=1e-12)
    assert np.all(np.isfinite(ours.transform(test)))


def test_statistics_attributes(train_test):
    train, _ = train_test
    mm, st = MinMaxScaler().fit(train), StandardScaler().fit(train)
    np.testing.assert_allclose(mm.data_min_, train.min(axis=0))
    np.testing.assert_allclose(mm.data_max_, train.max(axis=0))
    np.testing.assert_allclose(st.mean_, train.mean(axis=0))
    np.testing.assert_allclose(st.var_, train.var(axis=0))


def test_per_channel_axis_matches_sklearn_on_flattened_pixels():
    images = np.random.default_rng(1).integers(0, 256, (6, 5, 5, 3)).astype(np.uint8)
    ours = StandardScaler(axis=(0, 1, 2)).fit_transform(images)
    theirs = sk.StandardScaler().fit_transform(images.reshape(-1, 3).astype(np.float64))
    assert ours.dtype == np.float32 and ours.shape == images.shape
    np.testing.assert_allclose(ours.reshape(-1, 3), theirs, rtol=1e-5, atol=1e-5)


def test_float_dtype_is_kept():
    x = np.arange(6, dtype=np.float16).reshape(3, 2)
    assert MinMaxScaler().fit_transform(x).dtype == np.float16


def test_errors():
    with pytest.raises(RuntimeError, match=r"MinMaxScaler\.transform: not fitted"):
        MinMaxScaler().transform(np.zeros((2, 2)))
    scaler = StandardScaler().fit(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"feature shape \(5,\).*expected \(4,\)"):
        scaler.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="low < high"):
        MinMaxScaler(feature_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="empty data"):
        StandardScaler().fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        StandardScaler().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="axis 2 is invalid for data of rank 2"):
        StandardScaler(axis=2).fit(np.zeros((3, 3)))
