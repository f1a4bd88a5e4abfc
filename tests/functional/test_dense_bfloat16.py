"""F.dense in bfloat16 on CPUs without native bfloat16: float32 matmul of the bfloat16
values, rounded back (``_affine_upcast``), against explicit float32 formulas."""

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


def test_upcast_output_is_the_float32_affine_map_of_bfloat16_values_rounded(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    y = jax.jit(lambda p, v: F.dense(p, v))(params, x)
    assert y.dtype == BF16
    expected = x.astype(F32) @ _rounded(params["kernel"]) + _rounded(params["bias"])[None, :]
    _close(y, expected, rtol=2**-8)
    _force(monkeypatch, False)
    _close(jax.jit(lambda p, v: F.dense(p, v))(params, x), y)  # the native formulation


def test_upcast_gradients_are_float32_products_rounded_to_bfloat16(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    cot = jax.random.normal(jax.random.key(1), (B, OUT)).astype(BF16)

    def loss(p, v):
        return jnp.sum(F.dense(p, v).astype(F32) * cot.astype(F32))

    g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    assert g_x.dtype == BF16 and g_params["kernel"].dtype == F32
    g = cot.astype(F32)
    _close(g_x, g @ _rounded(params["kernel"]).T)
    _close(g_params["kernel"], x.astype(F32).T @ g)
    _close(g_params["bias"], g.sum(0))
    # bfloat16 semantics: the kernel's gradient passed through a bfloat16 cast
    k = np.asarray(g_params["kernel"])
    np.testing.assert_array_equal(k, np.asarray(_rounded(k)))


def test_float32_is_unchanged_and_jit_does_not_retrace(monkeypatch, case):
    params, x = case
    _force(monkeypatch, True)
    x32 = x.astype(F32)
    np.testing.assert_allclose(
        F.dense(params, x32), x32 @ params["kernel"] + params["bias"][None, :], rtol=1e-6, atol=1e-6
    )
    traces = []
    fn = jax.jit(lambda p, v: traces.append(1) or F.dense(p, v))
    x2 = (x.astype(F32) * 2).astype(BF16)
    fn(params, x)
    second = fn(params, x2)
    assert len(traces) == 1
    _close(second, x2.astype(F32) @ _rounded(params["kernel"]) + _rounded(params["bias"])[None, :])


def test_default_formulation_follows_the_hardware(case):
    params, x = case
    y = F.dense(params, x)
    assert y.dtype == BF16 and y.shape == (B, OUT)
    expected = x.astype(F32) @ _rounded(params["kernel"]) + _rounded(params["bias"])[None, :]
    _close(y, expected)
