"""Tests for nnjax.classic.markov: stationary distribution and sampled paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import classic
from nnjax.classic import markov
from nnjax.errors import ShapeError

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
    before = markov._sample_path._cache_size()
    classic.sample_path(jax.random.key(3), P.T / P.T.sum(1, keepdims=True), np.int64(2), 10)
    classic.sample_path(key, P, jnp.array(1), 10)
    assert markov._sample_path._cache_size() == before


def test_sample_path_under_jit_with_a_traced_start(key):
    cycle = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    path = jax.jit(lambda s: classic.sample_path(key, cycle, s, 4))(2)
    assert path.tolist() == [2, 0, 1, 2, 0]


def test_distribution_after_rejects_a_negative_steps():
    # matrix_power(P, -1) inverted P: "probabilities" such as [17.9, -6.6, 13.1, -23.5].
    for steps in (-1, 2.0, None):
        with pytest.raises(ValueError, match=r"distribution_after: `steps` must be a non-neg"):
            classic.distribution_after(P, jnp.array([1.0, 0.0, 0.0]), steps)
    np.testing.assert_allclose(classic.distribution_after(P, P[1], 0), P[1])


@pytest.mark.parametrize("start", [3, 5, -1, np.int64(4), jnp.array(3)])
def test_sample_path_rejects_a_start_outside_the_states(key, start):
    # Was: a path that begins with the non-state, e.g. [5, 0, 1, 2, 0].
    with pytest.raises(
        ValueError, match=r"sample_path: `start` = -?\d+ is not a state in \[0, 3\)"
    ):
        classic.sample_path(key, P, start, 4)


def test_sample_path_argument_errors(key):
    with pytest.raises(TypeError, match=r"sample_path: argument `start` has dtype float"):
        classic.sample_path(key, P, 1.0, 4)
    with pytest.raises(ShapeError, match=r"sample_path: argument `start` has shape \(2,\)"):
        classic.sample_path(key, P, jnp.array([0, 1]), 4)
    with pytest.raises(ValueError, match=r"sample_path: `steps` must be a non-negative int"):
        classic.sample_path(key, P, 0, -1)
    assert classic.sample_path(key, P, 2, 0).tolist() == [2]


def test_visit_frequencies_rejects_states_outside_range_and_an_empty_path():
    # Was: [0.5, 0, 0] (summing to 0.5) and [nan, nan, nan].
    with pytest.raises(ValueError, match=r"visit_frequencies: `path\[1\]` = 5 is not a state in"):
        classic.visit_frequencies(jnp.array([0, 5]), 3)
    with pytest.raises(ValueError, match=r"visit_frequencies: `path\[0\]` = -1"):
        classic.visit_frequencies(np.array([-1, 0]), 3)
    with pytest.raises(ValueError, match=r"visit_frequencies: `path` is empty"):
        classic.visit_frequencies(jnp.zeros((0,), jnp.int32), 3)
    with pytest.raises(TypeError, match=r"visit_frequencies: argument `path` has dtype float"):
        classic.visit_frequencies(jnp.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match=r"visit_frequencies: `num_states` must be a positive"):
        classic.visit_frequencies(jnp.array([0, 0]), 0)
    # Traced paths skip the value check (shapes only) and still compute.
    freq = jax.jit(lambda p: classic.visit_frequencies(p, 3))(jnp.array([0, 2, 2, 2]))
    np.testing.assert_allclose(freq, [0.25, 0.0, 0.75])


def test_errors():
    with pytest.raises(ValueError, match=r"`weights\[0, 1\]` = -1.0 < 0"):
        classic.transition_matrix(jnp.array([[1.0, -1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="row 1 of `weights` sums to 0"):
        classic.transition_matrix(jnp.array([[1.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(AssertionError, match=r"stationary_distribution: argument `transitions`"):
        classic.stationary_distribution(jnp.ones((2, 3)))


@pytest.mark.parametrize(
    "op",
    [
        classic.stationary_distribution,
        lambda p: classic.distribution_after(p, jnp.array([1.0, 0.0]), 3),
        lambda p: classic.sample_path(jax.random.key(0), p, 0, 3),
    ],
)
@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        ([[2.0, 2.0], [1.0, 1.0]], r"`transitions.sum\(axis=1\)\[0\]` = 4.0 .*not row-stochastic"),
        ([[-0.5, 1.5], [0.5, 0.5]], r"`transitions\[0, 0\]` = -0.5 < 0"),
    ],
)
def test_a_matrix_that_is_not_row_stochastic_is_refused(op, matrix, match):
    # stationary_distribution returned [-6e-8, 0.5] for the first
    with pytest.raises(ValueError, match=match):
        op(jnp.array(matrix))


def test_row_stochastic_matrices_pass_also_under_jit():
    p = classic.transition_matrix(jnp.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [5.0, 0.0, 1.0]]))
    pi = classic.stationary_distribution(p)
    np.testing.assert_allclose(pi @ p, pi, rtol=1e-5, atol=1e-6)
    jitted = jax.jit(classic.stationary_distribution)(p)
    np.testing.assert_allclose(jitted, pi, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_chains_work(dtype):
    # transition_matrix's own bfloat16 rows (sum 0.9985) failed the 1e-3 check, and
    # float16 raised NotImplementedError from lstsq.
    counts = np.array([[9.0, 1.0, 0.0], [5.0, 5.0, 3.0], [1.0, 2.0, 7.0]])
    p = classic.transition_matrix(jnp.asarray(counts, dtype))
    ref_p = counts / counts.sum(axis=1, keepdims=True)
    vals, vecs = np.linalg.eig(ref_p.T)  # NumPy reference in float64
    ref = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    ref /= ref.sum()
    pi = classic.stationary_distribution(p)
    assert pi.dtype == dtype
    np.testing.assert_allclose(np.asarray(pi, np.float32), ref, rtol=2e-2, atol=1e-2)
    after = classic.distribution_after(p, jnp.array([1.0, 0.0, 0.0]), 200)
    assert after.dtype == dtype
    np.testing.assert_allclose(np.asarray(after, np.float32), ref, rtol=2e-2, atol=1e-2)
    assert classic.sample_path(jax.random.key(0), p, 0, 5).shape == (6,)


def test_row_sum_tolerance_scales_with_the_dtype():
    assert markov._row_sum_tolerance(jnp.float32, 2) == 1e-3
    assert markov._row_sum_tolerance(jnp.float64, 2) == 1e-6
    bf16 = markov._row_sum_tolerance(jnp.bfloat16, 2)
    assert 2 * float(jnp.finfo(jnp.bfloat16).eps) < bf16 < 0.05
    with pytest.raises(ValueError, match=r"not row-stochastic"):  # still refuses 0.9
        classic.stationary_distribution(jnp.array([[0.5, 0.4], [0.5, 0.5]], jnp.bfloat16))


@pytest.mark.parametrize(
    "op",
    [
        classic.stationary_distribution,
        lambda p: classic.distribution_after(p, jnp.array([1.0, 0.0]), 3),
        lambda p: classic.sample_path(jax.random.key(0), p, 0, 3),
    ],
)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_transitions_are_refused(op, bad):
    # NaN passed both `< 0` and `|sum - 1| > tol`: NaN results or a path of zeros.
    with pytest.raises(ValueError, match=rf"`transitions\[0, 0\]` = {bad} is not finite"):
        op(jnp.array([[bad, bad], [0.5, 0.5]]))


def test_transition_matrix_refuses_non_finite_weights():
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match=rf"^transition_matrix: `weights\[0, 1\]` = {bad} is"):
            classic.transition_matrix(jnp.array([[1.0, bad], [1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"^transition_matrix: row 0 of `weights` sums to inf"):
        classic.transition_matrix(jnp.array([[3e38, 3e38], [1.0, 1.0]]))


def test_distribution_after_many_steps_stays_a_distribution():
    # matrix_power in float32 drifted: the sum reached 35.7 at 10**8 steps.
    p = classic.transition_matrix(jnp.array([[9.0, 1.0], [5.0, 5.0]]))
    for steps in (10**5, 10**8):
        d = classic.distribution_after(p, jnp.array([1.0, 0.0]), steps)
        assert abs(float(d.sum()) - 1.0) < 1e-5
        np.testing.assert_allclose(d, [5 / 6, 1 / 6], rtol=1e-5, atol=1e-6)  # exact π
    p0 = np.array([0.2, 0.3, 0.5])  # few steps: the NumPy float64 reference
    ref = p0 @ np.linalg.matrix_power(np.asarray(P, np.float64), 37)
    np.testing.assert_allclose(classic.distribution_after(P, p0, 37), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(classic.distribution_after(P, p0, 0), p0.astype(np.float32))


def test_list_and_wide_integer_arguments():
    # A list `initial` gave "has shape (2,), expected (2,)"; NumPy int64 values past int32
    # wrapped (2**32 -> 0) before the range check.
    np.testing.assert_allclose(classic.distribution_after(jnp.eye(2), [1.0, 0.0], 1), [1, 0])
    with pytest.raises(ShapeError, match=r"distribution_after: argument `initial` has shape \(3,"):
        classic.distribution_after(jnp.eye(2), [1.0, 0.0, 0.0], 1)
    with pytest.raises(ValueError, match=r"^sample_path: `start` = 4294967296 is not a state"):
        classic.sample_path(jax.random.key(0), P, np.int64(2**32), 3)
    with pytest.raises(ValueError, match=r"^visit_frequencies: `path\[1\]` = 4294967297 is not"):
        classic.visit_frequencies(np.array([0, 2**32 + 1]), 2)
    np.testing.assert_allclose(classic.visit_frequencies([0, 1, 1, 1], 2), [0.25, 0.75])
