"""Tests for nnjax.train.regularization: penalties, max-norm, clipping, freezing."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import regularization as R
from nnjax.train import step as step_lib

PARAMS = {
    "dense": {"kernel": jnp.array([[1.0, -2.0], [0.5, 0.0]]), "bias": jnp.array([3.0, -4.0])},
    "cell": {"w_x": jnp.array([[-1.0]]), "w_h": jnp.array([[2.0]]), "b": jnp.array([10.0])},
}


def test_path_names_drop_variable_value():
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    paths = [R.path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    assert ("layers", "0", "kernel") in paths
    assert all(p[-1] in ("kernel", "bias") for p in paths)


def test_penalties_match_hand_computed_values_on_kernels_only():
    # kernels: |1|+|-2|+|.5|+|0| + |-1| + |2| = 6.5; squares: 1+4+.25+0 + 1 + 4 = 10.25
    np.testing.assert_allclose(R.l1_penalty(PARAMS, 0.1), 0.65, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(R.l2_penalty(PARAMS, 0.1), 1.025, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        R.l1_l2_penalty(PARAMS, l1=0.1, l2=0.01), 0.65 + 0.1025, rtol=1e-6, atol=1e-6
    )


def test_penalties_with_where_none_include_biases():
    # biases: |3|+|-4|+|10| = 17; squares 9+16+100 = 125
    np.testing.assert_allclose(
        R.l1_penalty(PARAMS, 1.0, where=None), 6.5 + 17, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        R.l2_penalty(PARAMS, 1.0, where=None), 10.25 + 125, rtol=1e-6, atol=1e-6
    )


def test_penalty_on_model_state_with_custom_predicate():
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    kernel1 = model.layers[1].kernel[...]
    got = R.l2_penalty(state, 0.5, where=R.by_prefix("layers/1"))
    bias1 = model.layers[1].bias[...]
    np.testing.assert_allclose(
        got, 0.5 * (jnp.sum(kernel1**2) + jnp.sum(bias1**2)), rtol=1e-6, atol=1e-6
    )


def test_add_l1_l2_trains_like_penalised_loss(key):
    x = jax.random.normal(key, (8, 2))
    y = jnp.sum(x, axis=1, keepdims=True)
    params = {"kernel": jnp.array([[0.3], [-0.7]]), "bias": jnp.array([0.2])}
    data_loss = lambda p: jnp.mean((x @ p["kernel"] + p["bias"][None] - y) ** 2)
    total = lambda p: data_loss(p) + R.l1_l2_penalty(p, l1=0.01, l2=0.1)
    tx = optax.chain(R.add_l1_l2(l1=0.01, l2=0.1), optax.sgd(0.1))
    updates, _ = tx.update(jax.grad(data_loss)(params), tx.init(params), params)
    expected = jax.tree.map(lambda g: -0.1 * g, jax.grad(total)(params))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), updates, expected
    )


def test_project_max_norm_clips_columns_over_input_axis_and_keeps_small_ones():
    kernel = jnp.array([[3.0, 0.3, 0.0], [4.0, 0.4, 6.0]])  # column norms 5, 0.5, 6
    out = R.project_max_norm({"kernel": kernel, "bias": jnp.full(3, 100.0)}, 2.0)
    norms = jnp.linalg.norm(out["kernel"], axis=0)
    np.testing.assert_allclose(norms, [2.0, 0.5, 2.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out["kernel"][:, 1], kernel[:, 1])  # small: untouched
    np.testing.assert_allclose(
        out["kernel"][:, 0], kernel[:, 0] * 0.4, rtol=1e-6, atol=1e-6
    )  # direction
    np.testing.assert_array_equal(out["bias"], 100.0)  # biases are not constrained


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_project_max_norm_conv_kernel_norm_over_all_but_output_axis(key):
    kernel = 3.0 * jax.random.normal(key, (3, 3, 2, 4))
    out = R.project_max_norm({"kernel": kernel}, 1.0)["kernel"]
    norms = jnp.sqrt(jnp.sum(out**2, axis=(0, 1, 2)))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_max_norm_transform_keeps_model_kernels_in_ball_during_training(key):
    model = MLP(3, (16,), 2, rngs=nnx.Rngs(0))
    tx = optax.chain(optax.sgd(1.0), R.max_norm(0.5))
    gd, params, rest = step_lib.split_model(model)
    step = jax.jit(step_lib.make_train_step(gd, "mse", tx, metrics=()))
    opt_state = tx.init(params)
    x = jax.random.normal(key, (8, 3))
    for _ in range(3):
        params, opt_state, rest, _ = step(params, opt_state, rest, x, 10 * jnp.ones((8, 2)))
    for layer in params["layers"].values():
        assert jnp.all(jnp.linalg.norm(layer["kernel"][...], axis=0) <= 0.5 + 1e-5)


def test_max_norm_rejects_bad_value_and_missing_params():
    with pytest.raises(ValueError, match="max_value"):
        R.max_norm(0.0)
    tx = R.max_norm(1.0)
    with pytest.raises(ValueError, match="params"):
        tx.update({"kernel": jnp.ones((2, 2))}, tx.init(None))


def test_clip_gradients_bounds_global_norm():
    tx = R.clip_gradients(optax.sgd(1.0), 1.0)
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[0.0, 4.0]])}
    updates, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(optax.tree.norm(updates), 1.0, rtol=1e-6, atol=1e-6)
    small = jax.tree.map(lambda g: g / 10, grads)  # norm 0.5: unchanged
    updates, _ = tx.update(small, tx.init(small))
    jax.tree.map(
        lambda u, g: np.testing.assert_allclose(u, -g, rtol=1e-6, atol=1e-6), updates, small
    )


def test_freeze_leaves_frozen_subtree_exactly_unchanged(key):
    model = MLP(3, (8,), 2, rngs=nnx.Rngs(0))
    tx = R.freeze(optax.adam(1e-2), "layers/0")
    gd, params, rest = step_lib.split_model(model)
    before = jax.tree.map(jnp.array, nnx.to_pure_dict(params))
    step = jax.jit(step_lib.make_train_step(gd, "mse", tx, metrics=()))
    opt_state = tx.init(params)
    x, y = jax.random.normal(key, (8, 3)), jnp.ones((8, 2))
    for _ in range(2):
        params, opt_state, rest, _ = step(params, opt_state, rest, x, y)
    after = nnx.to_pure_dict(params)
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(after["layers"][0][name], before["layers"][0][name])
        assert not np.allclose(after["layers"][1][name], before["layers"][1][name])


def test_freeze_works_with_nnx_optimizer(key):
    model = MLP(2, (3,), 1, rngs=nnx.Rngs(0))
    kernel0 = jnp.array(model.layers[0].kernel[...])
    kernel1 = jnp.array(model.layers[1].kernel[...])
    optimizer = nnx.Optimizer(model, R.freeze(optax.sgd(0.1), ["layers/0"]), wrt=nnx.Param)
    grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((2, 2)))))(model)
    optimizer.update(model, grads)
    np.testing.assert_array_equal(model.layers[0].kernel[...], kernel0)
    assert not np.allclose(model.layers[1].kernel[...], kernel1)


@pytest.mark.parametrize("prefix", ["layers/0", ("layers", "0"), ("layers", 0)])
def test_by_prefix_forms_agree(prefix):
    select = R.by_prefix(prefix)
    assert select(("layers", "0", "kernel"), None)
    assert not select(("layers", "1", "kernel"), None)
    assert not select(("layers",), None)


def test_freeze_with_predicate_on_plain_dict_keeps_no_state_for_frozen():
    params = {"body": {"kernel": jnp.ones((2, 2))}, "head": {"kernel": jnp.ones((2, 2))}}
    tx = R.freeze(optax.adam(1e-2), lambda path, leaf: path[0] == "body")
    state = tx.init(params)
    sizes = [x.size for x in jax.tree.leaves(state) if hasattr(x, "size")]
    assert sum(sizes) == 1 + 4 + 4  # adam count + mu/nu for the head kernel only
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    np.testing.assert_array_equal(updates["body"]["kernel"], 0.0)
    assert np.all(updates["head"]["kernel"] < 0)


def test_select_is_an_optax_mask():
    mask = R.select(PARAMS)
    assert mask == {
        "dense": {"kernel": True, "bias": False},
        "cell": {"w_x": True, "w_h": True, "b": False},
    }


def test_l1_gradient_is_sign_of_w_zero_at_zero_weights():
    """The documented ``g + l1 * sign(w) + 2 * l2 * w`` (PyTorch's and TF's subgradient)."""
    kernel = jnp.array([[0.0, -0.5], [2.0, 0.0]])
    params = {"kernel": kernel, "bias": jnp.zeros(2)}
    tx = R.add_l1_l2(l1=0.1, l2=0.01)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    expected = 0.1 * np.sign(np.asarray(kernel)) + 2 * 0.01 * np.asarray(kernel)
    np.testing.assert_allclose(updates["kernel"], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(updates["bias"], np.zeros(2))  # not a kernel
    grad = jax.grad(lambda p: R.l1_penalty(p, 1.0))(params)["kernel"]
    np.testing.assert_array_equal(grad, np.sign(np.asarray(kernel)))
    np.testing.assert_allclose(R.l1_penalty(params, 0.1), 0.25, rtol=1e-6, atol=1e-7)  # |w| sum
    # a weight at exactly 0 with no data gradient stays there (it used to step to -lr * l1)
    sgd = optax.chain(R.add_l1_l2(l1=0.1), optax.sgd(0.5))
    step, _ = sgd.update(zeros, sgd.init(params), params)
    assert float(optax.apply_updates(params, step)["kernel"][0, 0]) == 0.0
