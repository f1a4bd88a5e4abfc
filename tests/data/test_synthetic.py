"""Synthetic datasets checked against independent definitions."""

from __future__ import annotations

import operator
import re

import numpy as np
import pytest

from nnjax.data import synthetic

_GATES = {
    "and": operator.and_,
    "or": operator.or_,
    "nand": lambda a, b: 1 - (a & b),
    "nor": lambda a, b: 1 - (a | b),
    "xor": operator.xor,
    "xnor": lambda a, b: 1 - (a ^ b),
}


@pytest.mark.parametrize("name", sorted(_GATES))
def test_logic_gates_match_python_operators(name):
    x, y = synthetic.logic_gate(name.upper())
    assert x.dtype == y.dtype == np.float32 and x.shape == (4, 2)
    expected = [_GATES[name](int(a), int(b)) for a, b in x]
    assert y.tolist() == expected


def test_bipolar_encoding():
    x, y = synthetic.xor(bipolar=True)
    x01, y01 = synthetic.xor()
    np.testing.assert_array_equal(x, 2 * x01 - 1)
    np.testing.assert_array_equal(y, 2 * y01 - 1)
    _, y_mixed = synthetic.logic_gate("or", bipolar=True, bipolar_targets=False)
    assert y_mixed.tolist() == [0, 1, 1, 1]


def test_unknown_gate_lists_known():
    with pytest.raises(ValueError, match=r"unknown gate 'imply'.*and, or, nand"):
        synthetic.logic_gate("imply")


def test_adding_problem_targets_and_markers():
    x, y = synthetic.adding_problem(64, 11, seed=3)
    assert x.shape == (64, 11, 2) and y.shape == (64,) and x.dtype == np.float32
    for values, markers, target in zip(x[..., 0], x[..., 1], y):
        marked = np.flatnonzero(markers)
        assert len(marked) == 2 and set(np.unique(markers)) == {0.0, 1.0}
        assert marked[0] < 11 // 2 <= marked[1]
        assert target == pytest.approx(values[marked].sum(), rel=1e-6)
    assert 0.0 <= x[..., 0].min() and x[..., 0].max() < 1.0


def test_adding_problem_is_seeded():
    a, _ = synthetic.adding_problem(8, 6, seed=1)
    b, _ = synthetic.adding_problem(8, 6, seed=1)
    c, _ = synthetic.adding_problem(8, 6, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 5), "num_samples"),
        ((4, 1), r"`seq_len` must be an int >= 2, got 1"),
        ((4, 2.5), "seq_len"),
    ],
)
def test_adding_problem_bad_args(args, match):
    with pytest.raises(ValueError, match=match):
        synthetic.adding_problem(*args)


def test_clean_sine_windows_follow_the_sine_recurrence():
    """A sampled sine obeys s[t+1] = 2 cos(w) s[t] - s[t-1], whatever its phase."""
    period = 13.0
    x, y = synthetic.sine_sequences(5, 8, period=period, noise=0.0, seed=4)
    assert x.shape == (5, 8, 1) and y.shape == (5,)
    s = np.concatenate([x[..., 0], y[:, None]], axis=1).astype(np.float64)
    w = 2 * np.pi / period
    np.testing.assert_allclose(s[:, 2:], 2 * np.cos(w) * s[:, 1:-1] - s[:, :-2], atol=1e-5)


def test_sine_noise_level():
    clean, _ = synthetic.sine_sequences(400, 30, noise=0.0, seed=0)
    noisy, _ = synthetic.sine_sequences(400, 30, noise=0.2, seed=0)
    assert np.std(noisy - clean) == pytest.approx(0.2, rel=0.05)


def test_two_moons_lie_on_half_circles():
    x, y = synthetic.two_moons(101, noise=0.0)
    outer, inner = x[y == 0].astype(np.float64), x[y == 1].astype(np.float64)
    assert len(outer) == 50 and len(inner) == 51
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0, atol=1e-6)
    assert outer[:, 1].min() >= -1e-6 and inner[:, 1].max() <= 0.5 + 1e-6


def test_blobs_cluster_around_given_centers():
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, -10.0]])
    x, y = synthetic.blobs(3000, centers=centers, std=0.5, seed=1)
    assert np.bincount(y).tolist() == [1000] * 3
    for k in range(3):
        np.testing.assert_allclose(x[y == k].mean(axis=0), centers[k], atol=0.1)
        assert x[y == k].std(axis=0) == pytest.approx([0.5, 0.5], rel=0.1)
    with pytest.raises(ValueError, match=r"shape \(K, F\)"):
        synthetic.blobs(10, centers=np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "kw",
    [{"bipolar": True}, {"bipolar_targets": True}, {"bipolar": True, "bipolar_targets": False}],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.bool_])
def test_bipolar_needs_a_signed_dtype(kw, dtype):
    """W11: -1 wrapped to 255 in uint8."""
    with pytest.raises(ValueError, match=rf"logic_gate: `dtype` {np.dtype(dtype)} cannot hold"):
        synthetic.logic_gate("xor", dtype=dtype, **kw)


def test_unsigned_dtype_still_fine_for_0_1_and_signed_for_bipolar():
    x, y = synthetic.logic_gate("xor", dtype=np.uint8)
    assert x.dtype == np.uint8 and y.tolist() == [0, 1, 1, 0]
    x, _ = synthetic.logic_gate("xor", bipolar=True, dtype=np.int8)
    assert x.min() == -1


@pytest.mark.parametrize("name", [None, 3, b"xor"])
def test_gate_name_must_be_a_string(name):
    """U10: used to be AttributeError ... has no attribute 'lower'."""
    with pytest.raises(TypeError, match=r"logic_gate: `name` must be a str .*, got "):
        synthetic.logic_gate(name)


_BAD_NUMBERS = [
    # (call, error, message fragment)
    (
        lambda: synthetic.sine_sequences(3, 5, period=float("nan")),
        ValueError,
        "`period` must be finite, got nan",
    ),
    (
        lambda: synthetic.sine_sequences(3, 5, period=0.0),
        ValueError,
        r"`period` must be > 0, got 0\.0",
    ),
    (
        lambda: synthetic.sine_sequences(3, 5, period="20"),
        TypeError,
        "`period` must be a real number, got '20'",
    ),
    (
        lambda: synthetic.sine_sequences(3, 5, noise=float("inf")),
        ValueError,
        "`noise` must be finite, got inf",
    ),
    (
        lambda: synthetic.sine_sequences(3, 5, noise=-0.1),
        ValueError,
        r"`noise` must be >= 0, got -0\.1",
    ),
    (
        lambda: synthetic.two_moons(10, noise=float("nan")),
        ValueError,
        "two_moons: `noise` must be finite",
    ),
    (
        lambda: synthetic.two_moons(10, noise=-1.0),
        ValueError,
        r"two_moons: `noise` must be >= 0, got -1\.0",
    ),
    (lambda: synthetic.blobs(9, std=-1.0), ValueError, r"blobs: `std` must be >= 0, got -1\.0"),
    (
        lambda: synthetic.blobs(9, std=float("nan")),
        ValueError,
        "blobs: `std` must be finite, got nan",
    ),
    (
        lambda: synthetic.blobs(9, box=float("inf")),
        ValueError,
        "blobs: `box` must be finite, got inf",
    ),
    (lambda: synthetic.blobs(9, box=0), ValueError, "blobs: `box` must be > 0, got 0"),
    (
        lambda: synthetic.blobs(9, centers=np.array([[np.nan, 0.0]])),
        ValueError,
        "blobs: `centers` must be finite",
    ),
    (lambda: synthetic.blobs(9, centers=np.zeros((0, 2))), ValueError, r"K, F >= 1, got \(0, 2\)"),
    (
        lambda: synthetic.blobs(9, centers=True),
        ValueError,
        "blobs: `centers` must be a positive int, got True",
    ),
    (
        lambda: synthetic.blobs(9, num_features=2.0),
        ValueError,
        r"blobs: `num_features` must be a positive int, got 2\.0",
    ),
    (
        lambda: synthetic.adding_problem(2.0, 10),
        ValueError,
        r"adding_problem: `num_samples` must be a positive int, got 2\.0",
    ),
    (
        lambda: synthetic.adding_problem(True, 10),
        ValueError,
        "`num_samples` must be a positive int, got True",
    ),
    (
        lambda: synthetic.adding_problem(None, 10),
        ValueError,
        "`num_samples` must be a positive int, got None",
    ),
    (
        lambda: synthetic.adding_problem(float("nan"), 10),
        ValueError,
        "`num_samples` must be a positive int, got nan",
    ),
    (
        lambda: synthetic.sine_sequences(3, True),
        ValueError,
        "sine_sequences: `window` must be a positive int, got True",
    ),
    (
        lambda: synthetic.adding_problem(3, 10, seed=-1),
        ValueError,
        "adding_problem: `seed` must be a non-negative int, got -1",
    ),
    (
        lambda: synthetic.two_moons(10, seed=1.5),
        ValueError,
        r"two_moons: `seed` must be a non-negative int, got 1\.5",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), _BAD_NUMBERS)
def test_bad_numbers_are_named(call, error, match):
    """W12-W14, U3, U9, U11, U12: NaN/inf/negative values gave NaN data or deep errors."""
    with pytest.raises(error, match=match):
        call()


def test_numpy_ints_and_zero_noise_still_work():
    x, _ = synthetic.blobs(np.int64(6), centers=np.int32(2), num_features=np.int8(3), std=0)
    assert x.shape == (6, 3)
    x, _ = synthetic.adding_problem(np.int64(2), np.int64(4), seed=np.int64(1))
    assert x.shape == (2, 4, 2)


_FLOAT_GENERATORS = {
    "adding_problem": lambda **kw: synthetic.adding_problem(3, 6, **kw),
    "sine_sequences": lambda **kw: synthetic.sine_sequences(3, 6, **kw),
    "two_moons": lambda **kw: synthetic.two_moons(6, **kw),
    "blobs": lambda **kw: synthetic.blobs(6, **kw),
}


@pytest.mark.parametrize("op", sorted(_FLOAT_GENERATORS))
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.complex64])
def test_real_valued_sets_need_a_float_dtype(op, dtype):
    """S35-E3: an integer dtype truncated the values (sine windows all 0, moons to -1/0/1)."""
    with pytest.raises(ValueError, match=rf"{op}: `dtype` must be a float dtype, got"):
        _FLOAT_GENERATORS[op](dtype=dtype)


@pytest.mark.parametrize("op", sorted(_FLOAT_GENERATORS))
@pytest.mark.parametrize("dtype", [np.float16, np.float64, "float32"])
def test_float_dtypes_are_honoured(op, dtype):
    x, _ = _FLOAT_GENERATORS[op](dtype=dtype)
    assert x.dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "call",
    [
        lambda: synthetic.adding_problem(3, 6, dtype="flaot32"),
        lambda: synthetic.blobs(6, dtype="nope"),
        lambda: synthetic.logic_gate("and", dtype="nope"),
    ],
)
def test_unknown_dtype_is_named(call):
    """S35-E3: NumPy's bare "data type 'nope' not understood" named no argument."""
    with pytest.raises(TypeError, match=r"`dtype` must be a NumPy dtype such as np\.float32"):
        call()


def test_logic_gate_needs_a_numeric_dtype():
    with pytest.raises(ValueError, match=r"logic_gate: `dtype` must be numeric, got <U"):
        synthetic.logic_gate("and", dtype=str)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: synthetic.adding_problem(5, 7, seed=s),
        lambda s: synthetic.sine_sequences(5, 7, seed=s),
        lambda s: synthetic.two_moons(9, seed=s),
        lambda s: synthetic.blobs(9, seed=s),
    ],
)
def test_every_generator_is_deterministic_by_seed(make):
    (a, ya), (b, yb), (c, _) = make(4), make(4), make(5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)


def test_two_moons_matches_sklearn_without_noise():
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = synthetic.two_moons(31, noise=0.0)
    ref_x, ref_y = datasets.make_moons(31, noise=0.0, shuffle=False)
    for label in (0, 1):
        ours = x[y == label].astype(np.float64)
        theirs = ref_x[ref_y == label]
        np.testing.assert_allclose(np.sort(ours, axis=0), np.sort(theirs, axis=0), atol=1e-6)
    assert y.dtype == np.int32 and x.dtype == np.float32


@pytest.mark.parametrize(
    ("kw", "name"),
    [({"bipolar": "no"}, "bipolar"), ({"bipolar_targets": 1}, "bipolar_targets")],
)
def test_bipolar_flags_must_be_bools(kw, name):
    """S35-E2: bipolar="no" is truthy, so it gave -1/+1 inputs."""
    with pytest.raises(TypeError, match=rf"logic_gate: `{name}` must be a bool"):
        synthetic.logic_gate("xor", **kw)
    assert synthetic.logic_gate("xor", bipolar=np.True_)[0].min() == -1


@pytest.mark.parametrize("centers", [[[0, 0], [1]], [[0.0, 0.0], [1.0, 2.0, 3.0]], [[0], 1]])
def test_ragged_centers_are_named(centers):
    """Audit: np.ndim(centers) raised NumPy's bare "setting an array element with a
    sequence" before blobs' own check of `centers` could name it."""
    shown = re.escape(repr(centers))
    match = rf"^blobs: `centers` must be an int or a \(K, F\) array of numbers, got {shown} \("
    with pytest.raises(ValueError, match=match):
        synthetic.blobs(5, centers=centers)
