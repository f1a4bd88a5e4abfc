"""F.dense in bfloat16 on CPUs without native bfloat16 (``_affine_upcast``): a float32
matmul of the bfloat16 input and the parameters as they are, rounded to bfloat16,
against explicit float32 formulas and against the native (bfloat16-operand) formulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax import _hardware

BF16, F32 = jnp.bfloat16, jnp.float32
B, IN, OUT = 8, 24, 16


@pytest.fixture
def case(key):
    kp, kb, kx = jax.random.split(key, 3)
    params = F.dense_init(kp, IN, OUT)
    params["bias"] = jax.random.normal(kb, (OUT,))
    return params, jax.random.normal(kx, (B, IN)).astype(BF16)


def _force(monkeypatch, upcast: bool):
    monkeypatch.setattr(_hardware, "upcast_matmuls", lambda dtype: upcast and dtype == BF16)


def _rounded(a):
    """``a`` rounded to bfloat16, as float32."""
    return jnp.asarray(a).astype(BF16).astype(F32)


def _close(actual, expected, rtol=1e-2):
    actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _affine(params, x):
    """The float32 reference: ``x @ kernel + bias`` of the exact values."""
    return x.astype(F32) @ params["kernel"] + params["bias"][None, :]


def test_upcast_output_is_the_float32_affine_map_rounded_once(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    y = jax.jit(lambda p, v: F.dense(p, v))(params, x)
    assert y.dtype == BF16
    # one bfloat16 rounding of the float32 result: the exact rounding, up to float32 sums
    np.testing.assert_allclose(
        np.asarray(y, np.float32), np.asarray(_rounded(_affine(params, x))), rtol=2**-7, atol=1e-6
    )
    _force(monkeypatch, False)  # the native formulation rounds the kernel: bfloat16 close
    native = jax.jit(lambda p, v: F.dense(p, v))(params, x)
    _close(y, native)
    _close(native, x.astype(F32) @ _rounded(params["kernel"]) + _rounded(params["bias"])[None, :])


def test_upcast_gradients_are_float32_products(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    cot = jax.random.normal(jax.random.key(1), (B, OUT)).astype(BF16)

    def loss(p, v):
        return jnp.sum(F.dense(p, v).astype(F32) * cot.astype(F32))

    g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    assert g_x.dtype == BF16 and g_params["kernel"].dtype == F32
    g = cot.astype(F32)
    _close(g_x, g @ params["kernel"].T, rtol=2**-7)  # rounded once to bfloat16
    np.testing.assert_allclose(g_params["kernel"], x.astype(F32).T @ g, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g_params["bias"], g.sum(0), rtol=1e-5, atol=1e-5)
    _force(monkeypatch, False)  # the native formulation's gradients: bfloat16 close
    n_params, n_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    _close(g_params["kernel"], n_params["kernel"])
    _close(g_x, n_x)


def test_float32_is_unchanged_and_jit_does_not_retrace(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    x32 = x.astype(F32)
    np.testing.assert_allclose(F.dense(params, x32), _affine(params, x32), rtol=1e-6, atol=1e-6)
    traces = []
    fn = jax.jit(lambda p, v: traces.append(1) or F.dense(p, v))
    x2 = (x.astype(F32) * 2).astype(BF16)
    fn(params, x)
    second = fn(params, x2)
    assert len(traces) == 1
    _close(second, _affine(params, x2), rtol=2**-7)


def test_bfloat16_parameters_enter_exactly(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    half = jax.tree.map(lambda a: a.astype(BF16), params)
    y = F.dense(half, x)
    assert y.dtype == BF16
    expected = x.astype(F32) @ half["kernel"].astype(F32) + half["bias"].astype(F32)[None, :]
    np.testing.assert_allclose(
        np.asarray(y, np.float32), np.asarray(_rounded(expected)), rtol=2**-7, atol=1e-6
    )


def test_default_formulation_follows_the_hardware(case):
    params, x = case
    y = F.dense(params, x)
    assert y.dtype == BF16 and y.shape == (B, OUT)
    _close(y, _affine(params, x))
