"""Tests for nnjax.train.per_example: per-example gradients and clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import losses
from nnjax.nn import MLP
from nnjax.train import per_example as P

B = 6


def _data(key, out=3):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (B, 4)), jax.random.randint(ky, (B,), 0, out)


def _loop_grads(loss_of_params, params, x, y):
    """Reference: plain jax.grad on each example, one by one."""
    grads = [jax.grad(loss_of_params)(params, x[b : b + 1], y[b : b + 1]) for b in range(B)]
    return jax.tree.map(lambda *g: jnp.stack(g), *grads)


def _assert_trees_close(a, b, **kw):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, **kw), a, b)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_model_grads_match_python_loop_and_batch_mean(key):
    model = MLP(4, (5,), 3, activation="tanh", rngs=nnx.Rngs(1))
    x, y = _data(key)
    got = P.per_example_grads(model, "cross_entropy", x, y)

    graphdef, params = nnx.split(model, nnx.Param)

    def loss(p, xb, yb):
        return losses.cross_entropy(nnx.merge(graphdef, p)(xb), yb)

    _assert_trees_close(got, _loop_grads(loss, params, x, y), rtol=1e-5, atol=1e-6)
    _assert_trees_close(P.batch_grad(got), jax.grad(loss)(params, x, y), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_params_form_with_apply_fn_matches_loop(key):
    params = F.dense_init(key, 4, 2)
    x, _ = _data(key)
    y = jax.random.normal(jax.random.fold_in(key, 1), (B, 2))
    got = P.per_example_grads(params, losses.mse, x, y, apply_fn=F.dense)
    ref = _loop_grads(lambda p, xb, yb: losses.mse(F.dense(p, xb), yb), params, x, y)
    _assert_trees_close(got, ref, rtol=1e-5, atol=1e-6)
    # The linear-model gradient in closed form: d/dW mean((xW+b-y)^2) = 2 x^T (xW+b-y) / out.
    residual = F.dense(params, x) - y
    np.testing.assert_allclose(
        got["kernel"], 2 * x[:, :, None] * residual[:, None, :] / 2, rtol=1e-5, atol=1e-6
    )


def test_no_recompilation_on_second_call(key):
    traces = []

    def counting_mse(p, t):
        traces.append(1)
        return losses.mse(p, t)

    params = F.dense_init(key, 4, 2)
    x, y = jnp.ones((B, 4)), jnp.zeros((B, 2))
    P.per_example_grads(params, counting_mse, x, y, apply_fn=F.dense)
    n = len(traces)
    assert n > 0
    P.per_example_grads(params, counting_mse, x + 1, y, apply_fn=F.dense)
    assert len(traces) == n


def test_bad_input_is_reported():
    params = F.dense_init(jax.random.key(0), 4, 2)
    with pytest.raises(ValueError, match="leading batch axis"):
        P.per_example_grads(params, "mse", jnp.ones((3, 4)), jnp.ones((2, 2)), apply_fn=F.dense)
    with pytest.raises(ValueError, match="apply_fn"):
        P.per_example_grads(params, "mse", jnp.ones((3, 4)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="max_norm"):
        P.clip_per_example({"w": jnp.ones((3, 2))}, 0.0)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_clip_per_example_bounds_norms_and_keeps_small_examples(key):
    grads = {
        "a": jax.random.normal(key, (B, 3, 2)),
        "b": 0.01 * jax.random.normal(jax.random.fold_in(key, 1), (B, 2)),
    }
    grads["a"] = grads["a"].at[0].multiply(1e-3)  # example 0 is small
    clipped = P.clip_per_example(grads, 1.0)
    norms = P.per_example_norms(clipped)
    assert jnp.all(norms <= 1.0 + 1e-5)
    np.testing.assert_allclose(norms[1:], 1.0, rtol=1e-5, atol=1e-5)
    _assert_trees_close(jax.tree.map(lambda g: g[0], clipped), jax.tree.map(lambda g: g[0], grads))
    # Independent reference: Optax's DP-SGD clip returns the sum of clipped gradients.
    summed, _ = optax.per_example_global_norm_clip(jax.tree.leaves(grads), 1.0)
    ours = [jnp.sum(g, axis=0) for g in jax.tree.leaves(clipped)]
    for a, b in zip(ours, summed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_per_example_norms_by_hand():
    grads = {"w": jnp.array([[3.0, 0.0], [0.0, 0.0]]), "b": jnp.array([[4.0], [2.0]])}
    np.testing.assert_allclose(P.per_example_norms(grads), [5.0, 2.0])
