"""Tests for nnjax.classic.markov: stationary distribution and sampled paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import classic

P = jnp.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])


def test_transition_matrix_rows_sum_to_one():
    p = classic.transition_matrix(jnp.array([[1.0, 3.0], [2.0, 2.0]]))
    np.testing.assert_allclose(p, [[0.25, 0.75], [0.5, 0.5]])


def test_stationary_distribution_is_fixed_point_and_matches_eig():
    pi = classic.stationary_distribution(P)
    np.testing.assert_allclose(pi @ P, pi, atol=1e-6)
    np.testing.assert_allclose(jnp.sum(pi), 1.0, rtol=1e-6, atol=1e-6)
    # Independent reference: the left eigenvector of eigenvalue 1.
    vals, vecs = np.linalg.eig(np.asarray(P, np.float64).T)
    ref = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    np.testing.assert_allclose(pi, ref / ref.sum(), atol=1e-5)


def test_distribution_after_converges():
    p0 = jnp.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(classic.distribution_after(P, p0, 1), P[0])
    np.testing.assert_allclose(
        classic.distribution_after(P, p0, 60), classic.stationary_distribution(P), atol=1e-5
    )


def test_visit_frequencies_approach_stationary(key):
    path = classic.sample_path(key, P, 0, 20000)
    assert path.shape == (20001,)
    assert int(path[0]) == 0
    assert set(np.unique(path)) <= {0, 1, 2}
    freq = classic.visit_frequencies(path, 3)
    np.testing.assert_allclose(freq, classic.stationary_distribution(P), atol=0.02)


def test_sampled_transitions_follow_p(key):
    path = np.asarray(classic.sample_path(key, P, 1, 20000))
    counts = np.zeros((3, 3))
    np.add.at(counts, (path[:-1], path[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), P, atol=0.03)


def test_sample_path_does_not_retrace(key):
    classic.sample_path(key, P, 0, 10)
    before = classic.sample_path._cache_size()
    classic.sample_path(jax.random.key(3), P.T / P.T.sum(1, keepdims=True), 2, 10)
    assert classic.sample_path._cache_size() == before


def test_errors():
    with pytest.raises(ValueError, match=r"`weights\[0, 1\]` = -1.0 < 0"):
        classic.transition_matrix(jnp.array([[1.0, -1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="row 1 of `weights` sums to 0"):
        classic.transition_matrix(jnp.array([[1.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(AssertionError, match=r"stationary_distribution: argument `transitions`"):
        classic.stationary_distribution(jnp.ones((2, 3)))
