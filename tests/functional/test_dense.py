"""Tests for nnjax.functional.dense: PyTorch reference, gradients, transforms, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._backend import ON_CPU
from ._torch_ref import assert_close, linear_weight, rand, to_numpy, to_torch, torch, value_and_vjp
from ._transforms import assert_transforms


def _random_params(n_in, n_out):
    return {"kernel": rand((n_in, n_out), 5, dtype=np.float32), "bias": rand((n_out,), 6)}


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5), (5,)])
def test_matches_torch_linear_outputs_and_grads(shape):
    x = rand(shape, 1)
    params = {"kernel": rand((5, 3), 2), "bias": rand((3,), 3)}
    cot = rand((*shape[:-1], 3), 4)

    tx = to_torch(x, requires_grad=True)
    tw = to_torch(linear_weight(params["kernel"]), requires_grad=True)
    tb = to_torch(params["bias"], requires_grad=True)
    ty = torch.nn.functional.linear(tx, tw, tb)
    (ty * to_torch(cot)).sum().backward()

    with jax.enable_x64(True):
        y, (g_params, g_x) = value_and_vjp(F.dense, params, x, cotangent=cot)

    assert_close(y, ty)
    assert_close(g_x, tx.grad)
    assert_close(g_params["kernel"], linear_weight(to_numpy(tw.grad)))
    assert_close(g_params["bias"], tb.grad)


def test_without_bias_is_a_matmul(key):
    params = F.dense_init(key, 4, 2, use_bias=False)
    assert set(params) == {"kernel"}
    x = jax.random.normal(key, (3, 4))
    # XLA:CPU and NumPy agree to the bit; a GPU's kernel sums in its own order (1 ulp off)
    tol = {} if ON_CPU else {"rtol": 1e-6, "atol": 1e-6}
    np.testing.assert_allclose(
        F.dense(params, x), np.asarray(x) @ np.asarray(params["kernel"]), **tol
    )


def test_init_shapes_dtype_and_glorot_bound(key):
    params = F.dense_init(key, 30, 20, dtype=jnp.bfloat16)
    assert params["kernel"].shape == (30, 20) and params["bias"].shape == (20,)
    assert params["kernel"].dtype == params["bias"].dtype == jnp.bfloat16
    assert not np.any(np.asarray(params["bias"], np.float32))
    limit = np.sqrt(6.0 / (30 + 20))
    assert np.abs(np.asarray(params["kernel"], np.float32)).max() <= limit * 1.01


def test_check_grads():
    params = {"kernel": rand((4, 3), 1), "bias": rand((3,), 2)}
    with jax.enable_x64(True):
        check_grads(jax.jit(F.dense), (params, rand((2, 4), 3)), order=2, modes=("fwd", "rev"))


def test_jit_vmap_grad_float32_bfloat16():
    params = _random_params(4, 3)
    x = rand((2, 4), 7, dtype=np.float32)
    assert_transforms(F.dense, params, x)


def test_computes_in_dtype_of_x():
    params = _random_params(4, 3)  # float32
    y = F.dense(params, jnp.ones((2, 4), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16


def test_wrong_feature_size_names_op_argument_and_shapes(key):
    params = F.dense_init(key, 3, 2)
    with pytest.raises(
        AssertionError, match=r"dense: argument `x` has shape \(4, 5\), expected \(\.\.\., 3\)"
    ):
        jax.jit(F.dense)(params, jnp.ones((4, 5)))


def test_scalar_input_is_rejected(key):
    params = F.dense_init(key, 3, 2)
    with pytest.raises(
        AssertionError, match=r"dense: argument `x` has shape \(\) \(rank 0\), expected rank >= 1"
    ):
        F.dense(params, jnp.ones(()))


def test_bad_kernel_and_bias_shapes(key):
    params = F.dense_init(key, 3, 2)
    with pytest.raises(
        AssertionError, match=r"dense: argument `params\['kernel'\]` has shape \(3,\)"
    ):
        F.dense({"kernel": jnp.ones(3)}, jnp.ones((1, 3)))
    bad_bias = {**params, "bias": jnp.ones(3)}
    with pytest.raises(
        AssertionError,
        match=r"dense: argument `params\['bias'\]` has shape \(3,\), expected \(2,\)",
    ):
        F.dense(bad_bias, jnp.ones((1, 3)))


def test_integer_input_raises_type_error(key):
    params = F.dense_init(key, 3, 2)
    with pytest.raises(TypeError, match="dense: argument `x` has dtype int32, expected a floating"):
        F.dense(params, jnp.ones((1, 3), jnp.int32))


def test_misspelt_or_missing_param_key_names_it_and_the_expected_keys(key):
    params = F.dense_init(key, 3, 2)
    with pytest.raises(ValueError, match=r"dense: `params` has an unexpected key 'bais' "):
        F.dense({"kernel": params["kernel"], "bais": params["bias"]}, jnp.ones((1, 3)))
    with pytest.raises(KeyError, match=r"no key 'kernel'.*expected keys: 'kernel', optionally"):
        F.dense({"bias": params["bias"]}, jnp.ones((1, 3)))


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((0, 4), "`in_features` must be a positive int, got 0"),
        ((3, -2), "`out_features` must be a positive int, got -2"),
        ((2.5, 4), "`in_features` must be a positive int, got 2.5"),
        ((True, 4), "`in_features` must be a positive int, got True"),
    ],
)
def test_init_rejects_non_positive_sizes(key, sizes, message):
    with pytest.raises(ValueError, match=f"dense_init: {message}"):
        F.dense_init(key, *sizes)


@pytest.mark.parametrize(("bad", "shown"), [(0, "got 0"), (None, "got None"), ("k", "got 'k'")])
def test_init_names_a_key_that_is_not_a_key(bad, shown):
    with pytest.raises(
        TypeError,
        match=rf"dense_init: `key` must be a PRNG key such as jax.random.key\(0\), {shown}",
    ):
        F.dense_init(bad, 4, 3)
    assert F.dense_init(jax.random.PRNGKey(0), 4, 3)["kernel"].shape == (4, 3)  # legacy key
