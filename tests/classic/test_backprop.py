"""Tests for nnjax.classic.backprop: BP1–BP4 and the matrix form equal jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import classic


def _assert_trees_close(a, b, **tol):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize("sizes", [(3, 1), (2, 6, 4, 3)])
def test_backprop_equals_jax_grad(key, sizes):
    k1, k2, k3 = jax.random.split(key, 3)
    params = classic.sigmoid_mlp_init(k1, sizes)
    x = jax.random.normal(k2, (7, sizes[0]))
    y = jax.random.uniform(k3, (7, sizes[-1]))
    manual = jax.jit(classic.backprop)(params, x, y)
    auto = jax.jit(jax.grad(classic.quadratic_cost))(params, x, y)
    _assert_trees_close(manual, auto, rtol=1e-5, atol=1e-6)


def test_quadratic_cost_against_numpy(key):
    params = classic.sigmoid_mlp_init(key, (3, 4, 2))
    x = np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3)
    y = np.full((5, 2), 0.3, np.float32)
    a = x
    for layer in params:
        a = 1 / (1 + np.exp(-(a @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]))))
    expected = np.sum((y - a) ** 2) / (2 * 5)
    np.testing.assert_allclose(classic.quadratic_cost(params, x, y), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_softmax_net_grads_equal_jax_grad(key):
    k1, k2, k3 = jax.random.split(key, 3)
    params = classic.softmax_net_init(k1, 5, 4, 3)
    x = jax.random.normal(k2, (9, 5))
    labels = jax.random.randint(k3, (9,), 0, 3)
    manual = jax.jit(classic.softmax_net_grads)(params, x, labels)
    auto = jax.jit(jax.grad(classic.softmax_net_loss))(params, x, labels)
    _assert_trees_close(manual, auto, rtol=1e-5, atol=1e-6)


def test_manual_gradients_jit_without_retracing(key):
    traces = []

    def counted(p, x, y):
        traces.append(None)
        return classic.backprop(p, x, y)

    f = jax.jit(counted)
    params = classic.sigmoid_mlp_init(key, (2, 3, 1))
    x, y = jnp.ones((4, 2)), jnp.zeros((4, 1))
    _assert_trees_close(f(params, x, y), classic.backprop(params, x, y), rtol=1e-6, atol=1e-6)
    f(params, x + 1, y)
    assert len(traces) == 1


def test_errors(key):
    with pytest.raises(ValueError, match="sigmoid_mlp_init: `sizes`"):
        classic.sigmoid_mlp_init(key, (3,))
    params = classic.sigmoid_mlp_init(key, (3, 2))
    with pytest.raises(AssertionError, match=r"backprop: argument `y` has shape \(4, 3\)"):
        classic.backprop(params, jnp.ones((4, 3)), jnp.ones((4, 3)))
    with pytest.raises(AssertionError, match=r"sigmoid_mlp: argument `x`"):
        classic.sigmoid_mlp(params, jnp.ones(3))


def test_softmax_net_grads_check_labels_as_the_loss_does(key):
    params = classic.softmax_net_init(key, 4, 3, 3)
    x = jax.random.normal(key, (7, 4))
    bad = jnp.arange(7) % 3 + 5  # ids 5, 6, 7 of a 3-class network
    with pytest.raises(ValueError, match=r"labels\[0\]` = 5 is not a class id in \[0, 3\)"):
        classic.softmax_net_loss(params, x, bad)
    # Was: a gradient, as one_hot of an out-of-range id is all zeros.
    with pytest.raises(
        ValueError, match=r"softmax_net_grads: `labels\[0\]` = 5 is not a class id in \[0, 3\)"
    ):
        classic.softmax_net_grads(params, x, bad)
    with pytest.raises(ValueError, match=r"softmax_net_grads: `labels\[2\]` = -1"):
        classic.softmax_net_grads(params, x, np.array([0, 1, -1, 0, 1, 2, 0]))
    with pytest.raises(TypeError, match=r"softmax_net_grads: argument `labels` has dtype float"):
        classic.softmax_net_grads(params, x, jnp.zeros(7))
    # Traced labels are checked by shape only, so the jitted gradient still works.
    labels = jnp.arange(7) % 3
    _assert_trees_close(
        jax.jit(classic.softmax_net_grads)(params, x, labels),
        classic.softmax_net_grads(params, x, labels),
        rtol=1e-6,
        atol=1e-7,
    )


def _numpy_backprop(params, x, y):
    """NumPy float64 reference: quadratic cost and its gradient for a sigmoid MLP."""
    ws = [np.asarray(p["kernel"], np.float64) for p in params]
    bs = [np.asarray(p["bias"], np.float64) for p in params]
    acts = [np.asarray(x, np.float64)]
    for w, b in zip(ws, bs):
        acts.append(1 / (1 + np.exp(-(acts[-1] @ w + b))))
    n, y = acts[0].shape[0], np.asarray(y, np.float64)
    cost = 0.5 * np.sum((acts[-1] - y) ** 2) / n
    delta = (acts[-1] - y) / n * acts[-1] * (1 - acts[-1])
    grads = []
    for layer in range(len(ws) - 1, -1, -1):
        grads.append({"kernel": acts[layer].T @ delta, "bias": delta.sum(axis=0)})
        delta = (delta @ ws[layer].T) * acts[layer] * (1 - acts[layer])
    return cost, grads[::-1]


def test_targets_are_cast_to_the_dtype_of_x_and_lists_work(key):
    # A float32 `y` with bfloat16 `x` gave float32 results (documented: the dtype of x);
    # a list `y` gave "has shape (2, 1), expected (2, 1)".
    params = classic.sigmoid_mlp_init(key, (2, 3, 1))
    x = jnp.array([[0.5, -1.0], [1.0, 2.0]], jnp.bfloat16)
    y = [[0.0], [1.0]]
    cost, grads = classic.quadratic_cost(params, x, y), classic.backprop(params, x, y)
    assert cost.dtype == jnp.bfloat16
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype(jnp.bfloat16)}
    ref_cost, ref_grads = _numpy_backprop(params, np.asarray(x, np.float32), y)
    np.testing.assert_allclose(float(cost), ref_cost, rtol=3e-2, atol=1e-3)
    _assert_trees_close(
        jax.tree.map(lambda g: np.asarray(g, np.float32), grads), ref_grads, rtol=5e-2, atol=5e-3
    )


def test_softmax_net_grads_refuse_a_single_class_as_the_loss_does(key):
    # softmax_net_grads returned zeros for classes=1; the loss raised.
    params = classic.softmax_net_init(key, 4, 3, 1)
    x, labels = jnp.ones((5, 4)), jnp.zeros(5, jnp.int32)
    for op in (classic.softmax_net_loss, classic.softmax_net_grads):
        with pytest.raises(ValueError, match=rf"^{op.__name__}: the network has a single class"):
            op(params, x, labels)


def test_softmax_net_grads_keep_the_dtype_of_x(key):
    params = classic.softmax_net_init(key, 4, 3, 2)
    grads = classic.softmax_net_grads(params, jnp.ones((5, 4), jnp.bfloat16), jnp.zeros(5, int))
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype(jnp.bfloat16)}


def test_backprop_arguments_named(key):
    with pytest.raises(TypeError, match=r"^sigmoid_prime: argument `z` has dtype int32"):
        classic.sigmoid_prime(jnp.array([0, 1]))
    with pytest.raises(TypeError, match=r"^sigmoid_mlp_init: `sizes` must be a sequence .*got 3$"):
        classic.sigmoid_mlp_init(key, 3)
    with pytest.raises(ValueError, match=r"^sigmoid_mlp_init: `kernel_init`: unknown initial"):
        classic.sigmoid_mlp_init(key, (2, 1), kernel_init="bogus")
