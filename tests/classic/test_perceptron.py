"""Tests for nnjax.classic.perceptron: the perceptron rule, training, sklearn parity."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import classic


def _theta(params):
    """Stacks (bias, kernel) into θ of shape (in + 1, out), bias row first."""
    return np.vstack([np.asarray(params["bias"])[None, :], np.asarray(params["kernel"])])


def test_worked_example_from_the_course():
    # All θ start at 1; x = (1, 0.5, 1) with x_0 = 1 the bias; y = (1, 0); η = 0.1.
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
    new = classic.perceptron_update(
        params, jnp.array([0.5, 1.0]), jnp.array([1.0, 0.0]), learning_rate=0.1
    )
    theta = _theta(new)
    np.testing.assert_allclose(theta[:, 0], [1.0, 1.0, 1.0])  # right: unchanged
    np.testing.assert_allclose(
        theta[:, 1], [0.9, 0.95, 0.9], rtol=1e-6, atol=1e-6
    )  # wrong: corrected


def test_update_matches_rule_elementwise(key):
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "kernel": jax.random.normal(k1, (4, 3)),
        "bias": jax.random.normal(k2, (3,)),
    }
    x = jax.random.normal(k3, (4,))
    y = jnp.array([1.0, 0.0, 1.0])
    new = classic.perceptron_update(params, x, y, learning_rate=0.5)
    # Independent reference: explicit loops over i, j with x_0 = 1.
    theta = _theta(params)
    xs = np.concatenate([[1.0], np.asarray(x)])
    a = (xs @ theta > 0).astype(np.float64)
    expected = theta.copy()
    for i in range(theta.shape[0]):
        for j in range(theta.shape[1]):
            expected[i, j] += 0.5 * (float(y[j]) - a[j]) * xs[i]
    np.testing.assert_allclose(_theta(new), expected, rtol=1e-6, atol=1e-6)


def _separable(seed: int, n: int = 200, d: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=(d,))
    margin = x @ w + 0.3
    keep = np.abs(margin) > 0.2  # a clear margin, so the rule converges quickly
    return x[keep], (margin[keep] > 0).astype(np.float32)


def test_fit_converges_and_matches_sklearn(key):
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = _separable(0)
    params = classic.perceptron_init(key, x.shape[1], 1)
    params, errors = classic.perceptron_fit(
        params, x, y[:, None], learning_rate=1.0, epochs=30, key=key
    )
    assert errors.shape == (30,)
    assert int(errors[-1]) == 0
    ours = float(jnp.mean(classic.perceptron(params, x)[:, 0] == y))
    ref = sklearn.Perceptron(max_iter=30, tol=None, random_state=0).fit(x, y).score(x, y)
    assert ours == 1.0
    assert ours >= ref - 1e-9


def test_several_outputs_learn_gates_at_once(key):
    x = classic.truth_table_inputs(2)
    y = jnp.stack([x[:, 0] * x[:, 1], jnp.maximum(x[:, 0], x[:, 1])], axis=1)  # AND, OR
    params = classic.perceptron_init(key, 2, 2)
    params, _ = classic.perceptron_fit(params, x, y, learning_rate=0.1, epochs=20)
    np.testing.assert_array_equal(classic.perceptron(params, x), y)


def test_fit_does_not_retrace(key, logged_compiles):
    x, y = _separable(1, n=40)
    params = classic.perceptron_init(key, x.shape[1], 1)
    classic.perceptron_fit(params, x, y[:, None], epochs=3, learning_rate=0.1)
    with logged_compiles() as compiled:
        classic.perceptron_fit(params, x + 1.0, y[:, None], epochs=3, learning_rate=0.5)
    assert compiled == []


def test_fit_names_targets_other_than_zero_and_one(key):
    params = classic.perceptron_init(key, 2, 1)
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=r"perceptron_fit: `y\[0, 0\]` = -1.0 is not 0 or 1"):
        classic.perceptron_fit(params, x, jnp.array([[-1.0], [1.0], [1.0], [1.0]]))
    with pytest.raises(ValueError, match=r"perceptron_epoch: `y\[3, 0\]` = 2.0"):
        classic.perceptron_epoch(
            params, x, jnp.array([[0.0], [1.0], [1.0], [2.0]]), learning_rate=1.0
        )


def test_bad_shapes_name_the_argument(key):
    params = classic.perceptron_init(key, 3, 2)
    with pytest.raises(AssertionError, match=r"perceptron_update: argument `x`"):
        classic.perceptron_update(params, jnp.ones(4), jnp.ones(2), learning_rate=0.1)
    with pytest.raises(AssertionError, match=r"perceptron_fit: argument `y`"):
        classic.perceptron_fit(params, jnp.ones((5, 3)), jnp.ones((5, 3)))
    with pytest.raises(TypeError, match=r"perceptron_fit: argument `x` has dtype int"):
        classic.perceptron_fit(params, jnp.ones((5, 3), jnp.int32), jnp.ones((5, 2)))


def test_epochs_must_be_a_non_negative_int(key):
    params = classic.perceptron_init(key, 2, 1)
    x, y = jnp.ones((3, 2)), jnp.ones((3, 1))
    for epochs in (-1, 1.5):
        with pytest.raises(ValueError, match=r"perceptron_fit: `epochs` must be a non-negative"):
            classic.perceptron_fit(params, x, y, epochs=epochs)
    fitted, errors = classic.perceptron_fit(params, x, y, epochs=0)
    assert errors.shape == (0,)
    jax.tree.map(np.testing.assert_array_equal, fitted, params)


def test_perceptron_epoch_compiles_once_per_shape():
    """Eager calls reuse one program (the scan was compiled anew at every call)."""
    perceptron = importlib.import_module("nnjax.classic.perceptron")
    p = classic.perceptron_init(jax.random.key(0), 1, 1)
    x, y = jnp.array([[1.0], [-1.0]]), jnp.array([[1.0], [0.0]])
    classic.perceptron_epoch(p, x, y, learning_rate=1.0)
    before = perceptron._epoch._cache_size()
    _, errors = classic.perceptron_epoch(p, -x, y, learning_rate=0.5)
    assert perceptron._epoch._cache_size() == before and int(errors) == 1


LEARNERS = {
    "perceptron_update": lambda lr: classic.perceptron_update(
        {"kernel": jnp.zeros((2, 1)), "bias": jnp.zeros(1)},
        jnp.ones(2),
        jnp.ones(1),
        learning_rate=lr,
    ),
    "perceptron_epoch": lambda lr: classic.perceptron_epoch(
        {"kernel": jnp.zeros((2, 1)), "bias": jnp.zeros(1)},
        jnp.ones((4, 2)),
        jnp.ones((4, 1)),
        learning_rate=lr,
    ),
    "perceptron_fit": lambda lr: classic.perceptron_fit(
        {"kernel": jnp.zeros((2, 1)), "bias": jnp.zeros(1)},
        jnp.ones((4, 2)),
        jnp.ones((4, 1)),
        learning_rate=lr,
        epochs=1,
    ),
    "train_xor": lambda lr: classic.train_xor(
        jax.random.key(0), steps=1, restarts=1, learning_rate=lr
    ),
}


@pytest.mark.parametrize("op", list(LEARNERS))
@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), np.float32(-1)])
def test_bad_learning_rate_values_are_named(op, bad):
    with pytest.raises(ValueError, match=rf"^{op}: `learning_rate` must be a finite number >= 0"):
        LEARNERS[op](bad)


@pytest.mark.parametrize("op", list(LEARNERS))
def test_non_scalar_learning_rate_is_named(op):
    # perceptron_fit failed inside lax.scan ("carry input and carry output must have
    # equal types").
    with pytest.raises(TypeError, match=rf"^{op}: `learning_rate` must be a real number"):
        LEARNERS[op](jnp.array([0.1, 0.2]))


def test_unknown_kernel_init_names_the_function(key):
    with pytest.raises(ValueError, match=r"^perceptron_init: `kernel_init`: unknown initializer"):
        classic.perceptron_init(key, 2, 1, kernel_init="bogus")
    with pytest.raises(TypeError, match=r"^perceptron_init: `kernel_init`: .*got 3"):
        classic.perceptron_init(key, 2, 1, kernel_init=3)
