"""Tests for nnjax.classic.hopfield: storage, recall, energy, capacity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import ShapeError, classic


def _patterns(key, p, n):
    return jnp.where(jax.random.bernoulli(key, 0.5, (p, n)), 1.0, -1.0)


def _flip(key, patterns, fraction):
    flips = jax.random.bernoulli(key, fraction, patterns.shape)
    return jnp.where(flips, -patterns, patterns)


def test_hebbian_weights_against_loops(key):
    xi = np.asarray(_patterns(key, 3, 6))
    w = np.zeros((6, 6))
    for i in range(6):
        for j in range(6):
            if i != j:
                w[i, j] = sum(xi[m, i] * xi[m, j] for m in range(3)) / 6
    np.testing.assert_allclose(classic.hopfield_store(xi), w, atol=1e-6)


def test_energy_against_numpy(key):
    xi = _patterns(key, 2, 8)
    w = classic.hopfield_store(xi)
    s = np.asarray(_patterns(jax.random.key(1), 3, 8))
    expected = [-0.5 * row @ np.asarray(w) @ row for row in s]
    np.testing.assert_allclose(classic.hopfield_energy(w, s), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize("synchronous", [False, True])
def test_recall_from_noisy_copies(key, synchronous):
    k1, k2, k3 = jax.random.split(key, 3)
    xi = _patterns(k1, 4, 100)  # 4 patterns << 0.14 N
    w = classic.hopfield_store(xi)
    noisy = _flip(k2, xi, 0.1)
    assert float(jnp.min(classic.overlap(noisy, xi))) < 0.95
    out = classic.hopfield_recall(w, noisy, steps=5, synchronous=synchronous, key=k3)
    np.testing.assert_array_equal(out, xi)
    np.testing.assert_array_equal(classic.hopfield_step(w, xi), xi)  # fixed points


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_energy_never_increases_under_async_updates(key):
    k1, k2, k3 = jax.random.split(key, 3)
    w = classic.hopfield_store(_patterns(k1, 12, 40))  # past capacity: many updates
    s = _patterns(k2, 5, 40)
    order = jnp.concatenate([jax.random.permutation(k, 40) for k in jax.random.split(k3, 3)])
    _, energies = classic.hopfield_sweep(w, s, order)
    energies = jnp.concatenate([classic.hopfield_energy(w, s)[None], energies])
    steps = np.diff(np.asarray(energies), axis=0)
    assert np.all(steps <= 1e-5)
    assert np.any(steps < -1e-3)  # and it actually decreased


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_capacity_limit(key):
    n = 100
    k1, k2, k3 = jax.random.split(key, 3)

    def mean_overlap(p):
        xi = _patterns(jax.random.fold_in(k1, p), p, n)
        out = classic.hopfield_recall(
            classic.hopfield_store(xi), _flip(k2, xi, 0.05), steps=5, key=k3
        )
        return float(jnp.mean(classic.overlap(out, xi)))

    assert mean_overlap(5) == 1.0  # well below 0.14 N
    assert mean_overlap(40) < 0.9  # well above: recall degrades


def test_recall_does_not_retrace(key):
    w = classic.hopfield_store(_patterns(key, 2, 16))
    s = _patterns(jax.random.key(1), 3, 16)
    classic.hopfield_recall(w, s, steps=2, key=key)
    before = classic.hopfield_recall._cache_size()
    classic.hopfield_recall(w, -s, steps=2, key=jax.random.key(2))
    assert classic.hopfield_recall._cache_size() == before


def test_errors():
    with pytest.raises(AssertionError, match=r"hopfield_recall: argument `state` has shape"):
        classic.hopfield_recall(jnp.zeros((4, 4)), jnp.ones((2, 5)))
    with pytest.raises(AssertionError, match=r"hopfield_energy: argument `weights`"):
        classic.hopfield_energy(jnp.zeros((4, 3)), jnp.ones(4))
    with pytest.raises(TypeError, match="hopfield_store: argument `patterns`"):
        classic.hopfield_store(jnp.ones((2, 4), jnp.int32))


@pytest.mark.parametrize("synchronous", [False, True])
def test_recall_steps_must_be_a_non_negative_int(synchronous):
    w = classic.hopfield_store(jnp.array([[1.0, -1.0, 1.0, -1.0]]))
    cue = jnp.array([1.0, 1.0, 1.0, -1.0])
    for steps in (-1, 2.5):
        with pytest.raises(ValueError, match=r"hopfield_recall: `steps` must be a non-negative"):
            classic.hopfield_recall(w, cue, steps=steps, synchronous=synchronous)
    out = classic.hopfield_recall(w, cue, steps=0, synchronous=synchronous)
    np.testing.assert_array_equal(out, cue)


def test_hopfield_sweep_compiles_once_per_shape():
    """Eager calls reuse one program (the scan was compiled anew at every call)."""
    from nnjax.classic import hopfield

    w = classic.hopfield_store(jnp.array([[1.0, -1.0, 1.0, -1.0]]))
    classic.hopfield_sweep(w, jnp.ones(4), jnp.arange(4))
    before = hopfield._sweep._cache_size()
    s, _ = classic.hopfield_sweep(w, -jnp.ones(4), jnp.arange(4)[::-1])
    assert hopfield._sweep._cache_size() == before
    np.testing.assert_array_equal(s, [-1.0, 1.0, -1.0, 1.0])


def _sign(v):
    return np.where(v >= 0, 1.0, -1.0)


def test_updates_follow_the_documented_rule_for_non_symmetric_weights():
    # s_i ← sign(Σ_j W_ij s_j); the code used Σ_j W_ji s_j (s @ W), the same only for
    # symmetric W.
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 6)).astype(np.float32)
    states = _sign(rng.normal(size=(4, 6))).astype(np.float32)
    step = classic.hopfield_step(w, states)
    np.testing.assert_array_equal(step, _sign(states @ w.T))  # each row: sign(W s)
    order = np.array([2, 0, 5, 2, 1])
    swept, _ = classic.hopfield_sweep(w, states, order)
    ref = states.copy()
    for i in order:  # NumPy reference, one unit at a time
        ref[:, i] = _sign(ref @ w[i])
    np.testing.assert_array_equal(swept, ref)
    recalled = classic.hopfield_recall(w, states, steps=1, synchronous=True)
    np.testing.assert_array_equal(recalled, _sign(states @ w.T))


def test_hopfield_arguments_named():
    with pytest.raises(TypeError, match=r"^hopfield_recall: `synchronous` must be a Python bool"):
        classic.hopfield_recall(jnp.zeros((2, 2)), jnp.ones(2), synchronous="no")
    # An int64 index past int32 used to wrap to 0 before the range check.
    with pytest.raises(ValueError, match=r"^hopfield_sweep: `order\[1\]` = 4294967296 is not"):
        classic.hopfield_sweep(jnp.zeros((2, 2)), jnp.ones(2), np.array([0, 2**32]))
    # A list pattern gave "has shape (2,), expected (2,)".
    assert float(classic.overlap(jnp.array([1.0, -1.0]), [1.0, -1.0])) == 1.0
    with pytest.raises(ShapeError, match=r"^overlap: argument `pattern` has shape \(3,\)"):
        classic.overlap(jnp.array([1.0, -1.0]), [1.0, -1.0, 1.0])
