"""MinMaxScaler and StandardScaler against scikit-learn's."""

from __future__ import annotations

import warnings

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


_X = np.array([[0.0, 10.0], [2.0, 30.0]])


@pytest.mark.parametrize(
    "feature_range",
    [(0, np.inf), (-np.inf, 0), (0, np.nan), (-1e308, 1e308), (0, 1, 2), ("a", 1), None, (1, 0)],
)
def test_feature_range_must_be_two_finite_increasing_numbers(feature_range):
    """W8, U5: an infinite range gave all-NaN output; others got unpacking errors."""
    with pytest.raises(ValueError, match=r"MinMaxScaler: `feature_range` must be two finite"):
        MinMaxScaler(feature_range=feature_range)


def test_axis_numpy_int_accepted_bool_and_others_rejected():
    """W9, U6."""
    np.testing.assert_array_equal(
        MinMaxScaler(axis=np.int64(0)).fit_transform(_X), MinMaxScaler(axis=0).fit_transform(_X)
    )
    np.testing.assert_array_equal(
        StandardScaler(axis=[np.int32(0)]).fit_transform(_X), StandardScaler().fit_transform(_X)
    )
    for axis in (True, 1.5, None, "0", (0, 1.0)):
        with pytest.raises(TypeError, match=r"`axis` must be an int or a tuple of ints, got"):
            MinMaxScaler(axis=axis)
    with pytest.raises(TypeError, match=r"StandardScaler: `axis` .* got True"):
        StandardScaler(axis=True)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.array([[1 + 2j], [3 + 4j]]), "complex dtype complex128"),
        (np.array([["a"], ["b"]]), "non-numeric dtype <U1"),
        (np.array([[object()], [object()]]), "non-numeric dtype object"),
    ],
)
def test_non_real_data_is_rejected(data, match):
    """W10, U7: complex data lost its imaginary part; strings got NumPy's message."""
    with pytest.raises(
        TypeError, match=r"StandardScaler\.fit: data must be real numbers.*" + match
    ):
        StandardScaler().fit(data)
    scaler = MinMaxScaler().fit(np.zeros((2, 1)))
    with pytest.raises(TypeError, match=r"MinMaxScaler\.transform: .*" + match):
        scaler.transform(data)


def test_ragged_data_is_named():
    with pytest.raises(ValueError, match=r"MinMaxScaler\.fit: data is not a regular array"):
        MinMaxScaler().fit([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    ("scaler", "data"),
    [(StandardScaler(), [[1e200], [-1e200]]), (MinMaxScaler(), [[1.7e308], [-1.7e308]])],
)
def test_statistics_that_overflow_raise(scaler, data):
    """U8: finite data whose variance overflowed left scale_ = inf."""
    with pytest.raises(ValueError, match=r"\.fit: the statistics of the data overflow float64"):
        scaler.fit(np.array(data))
    assert scaler.center_ is None and scaler.scale_ is None  # still unfitted


def test_constant_feature_with_a_rounded_mean_stays_constant():
    """S35-W1: a constant 123.456 over 1000 rows has a mean off by rounding, so its std
    (~1e-14) passed the old zero test and transform multiplied by ~1e13."""
    train = np.tile([123.456, 0.3, 7.0], (1000, 1))
    test = np.array([[124.0, 0.5, 8.0]])
    ours, theirs = StandardScaler().fit(train), sk.StandardScaler().fit(train)
    np.testing.assert_allclose(ours.scale_, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(ours.transform(train), 0.0, atol=1e-9)
    np.testing.assert_allclose(ours.transform(test), theirs.transform(test), atol=1e-9)
    np.testing.assert_allclose(ours.transform(test), [[0.544, 0.2, 1.0]], atol=1e-9)


@pytest.mark.parametrize("scale", [1e-20, 1e-12])
def test_tiny_valued_features_are_not_constant(scale):
    """S35-W2: any feature with a spread below 2.2e-16 (in absolute terms) counted as
    constant, so values of order 1e-20 came out unscaled."""
    x = np.array([[1.0], [2.0], [4.0], [5.0]]) * scale
    np.testing.assert_allclose(
        StandardScaler().fit_transform(x), sk.StandardScaler().fit_transform(x), atol=1e-9
    )
    np.testing.assert_allclose(MinMaxScaler().fit_transform(x).ravel(), [0, 0.25, 0.75, 1])


def test_float16_data_is_scaled_with_float32_arithmetic():
    """S35-W3: the statistics were cast to float16: a range over 65504 became inf (all
    zeros out) and a mean of ~1000 was rounded to a multiple of 0.5."""
    wide = np.array([[-40000.0], [0.0], [40000.0]], np.float16)
    mm = MinMaxScaler().fit(wide)
    out = mm.transform(wide)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out.ravel(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(mm.inverse_transform(out), wide)
    x = (1000.3 + np.random.default_rng(0).normal(size=(200, 1))).astype(np.float16)
    ref = sk.StandardScaler().fit_transform(x.astype(np.float64))
    np.testing.assert_allclose(StandardScaler().fit_transform(x), ref, atol=5e-3)


def test_float32_range_beyond_float32_max_gives_no_nan():
    """S35-W3: (3e38 - -3e38) overflowed float32: NaN out and RuntimeWarnings."""
    x = np.array([[3e38], [-3e38], [0.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = MinMaxScaler().fit_transform(x)
        back = MinMaxScaler().fit(x).inverse_transform(out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(back, x, rtol=1e-6, atol=1e-7)


def test_failed_refit_leaves_the_scaler_as_it_was():
    """S35-W4: mean_/var_ (data_min_/data_max_) were overwritten before the overflow check."""
    scaler = StandardScaler().fit(np.array([[1.0], [3.0]]))
    with pytest.raises(ValueError, match="overflow"):
        scaler.fit(np.array([[1e200], [-1e200]]))
    np.testing.assert_array_equal(scaler.mean_, [2.0])
    np.testing.assert_array_equal(scaler.var_, [1.0])
    mm = MinMaxScaler().fit(np.array([[1.0], [3.0]]))
    with pytest.raises(ValueError, match="overflow"):
        mm.fit(np.array([[1.7e308], [-1.7e308]]))
    np.testing.assert_array_equal(mm.data_max_, [3.0])


def test_empty_axis_tuple_is_rejected():
    """S35-E1: axis=() made every value its own constant feature (all zeros out)."""
    for cls in (MinMaxScaler, StandardScaler):
        with pytest.raises(ValueError, match=r"`axis` must name at least one axis.*got \(\)"):
            cls(axis=())


def test_minmax_center_and_scale_attributes_are_as_documented(train_test):
    train, _ = train_test
    ours, theirs = MinMaxScaler((-1.0, 1.0)).fit(train), sk.MinMaxScaler((-1.0, 1.0)).fit(train)
    np.testing.assert_allclose(ours.center_, train.min(axis=0))
    np.testing.assert_allclose(1.0 / ours.scale_, theirs.scale_)
    assert ours.shift_ == -1.0
    np.testing.assert_allclose(
        StandardScaler().fit(train).scale_, sk.StandardScaler().fit(train).scale_
    )


def test_nan_passes_through_transform_like_sklearn():
    scaler = StandardScaler().fit(np.array([[1.0], [3.0]]))
    assert np.isnan(scaler.transform(np.array([[np.nan]], np.float32))).all()


def _timestamps() -> np.ndarray:
    """Two integer features near 1.7e9 (Unix timestamps), where float32's step is 128."""
    t = 1_700_000_000 + np.arange(100, dtype=np.int64)
    return np.stack([t, 2 * t[::-1]], axis=1)


def test_large_integers_are_standardised_from_their_exact_values():
    """Audit: int data was cast to float32 before fitting and transforming: timestamps
    ~1.7e9 got var 3727 instead of 833.25, and a transform of all zeros."""
    x = _timestamps()
    exact = x.astype(np.float64)
    scaler = StandardScaler().fit(x)
    np.testing.assert_allclose(scaler.mean_, exact.mean(axis=0), rtol=1e-15, atol=1e-6)
    np.testing.assert_allclose(scaler.var_, exact.var(axis=0), rtol=1e-12, atol=1e-9)
    out = scaler.transform(x)
    assert out.dtype == np.float32
    ref = (exact - exact.mean(axis=0)) / exact.std(axis=0)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    back = scaler.inverse_transform(ref)
    np.testing.assert_allclose(back, exact, rtol=1e-15, atol=1e-5)


@pytest.mark.parametrize("feature_range", [(0.0, 1.0), (-1.0, 3.0)])
def test_large_integers_are_min_max_scaled_from_their_exact_values(feature_range):
    """Audit: as for StandardScaler, the float32 cast of int data made data_min_ and
    the transform of timestamps ~1.7e9 wrong by up to 64 seconds."""
    x = _timestamps()
    exact = x.astype(np.float64)
    low, high = feature_range
    scaler = MinMaxScaler(feature_range).fit(x)
    np.testing.assert_array_equal(scaler.data_min_, exact.min(axis=0))
    np.testing.assert_array_equal(scaler.data_max_, exact.max(axis=0))
    out = scaler.transform(x)
    assert out.dtype == np.float32
    ref = (exact - exact.min(axis=0)) / np.ptp(exact, axis=0) * (high - low) + low
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scaler.inverse_transform(ref), exact, rtol=1e-15, atol=1e-5)


def test_integer_and_bool_data_become_float32_as_documented():
    for x in (np.array([[0], [2], [4]], np.int8), np.array([[True], [False], [True]])):
        for scaler in (StandardScaler(), MinMaxScaler()):
            out = scaler.fit_transform(x)
            assert out.dtype == np.float32 and scaler.inverse_transform(out).dtype == np.float32
            np.testing.assert_allclose(scaler.inverse_transform(out), x, rtol=1e-6, atol=1e-6)
