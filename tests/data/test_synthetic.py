"""Synthetic datasets checked against independent definitions."""

from __future__ import annotations

import operator

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
    ("args", "match"), [((0, 5), "num_samples"), ((4, 1), "at least 2"), ((4, 2.5), "seq_len")]
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
