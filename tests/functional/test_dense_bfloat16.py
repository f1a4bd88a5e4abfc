"""F.dense in bfloat16 on CPUs without native bfloat16 (``_affine_upcast``): a float32
matmul of the bfloat16 input and the parameters as they are, rounded to bfloat16,
against explicit float32 formulas and against the native (bfloat16-operand) formulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax import _hardware
from nnjax.functional import _small_loop_dots

BF16, F32 = jnp.bfloat16, jnp.float32
B, IN, OUT = 8, 24, 16


@pytest.fixture(autouse=True)
def _small_loops_take_bfloat16_matmuls(monkeypatch):
    # the matmuls' forms as jaxlibs from 0.10 compile them: on jaxlib 0.8 and 0.9 matmuls
    # this small get float32 operands (test_small_loop_dots.py checks that rule)
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: True)


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


def _dot_operand_dtypes(fn, *args):
    """The operand dtypes of every ``dot_general`` in ``fn``'s jaxpr (nested ones too)."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(tuple(jnp.dtype(v.aval.dtype).name for v in eqn.invars))
            for value in eqn.params.values():
                for sub in value if isinstance(value, tuple | list) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def _forward(params, x, forward_only=True):
    if not forward_only:
        return F.dense(params, x)
    with F.forward_only():
        return F.dense(params, x)


@pytest.mark.parametrize(
    ("lead", "forward_only", "float32_products"),
    [
        ((1,), True, True),
        ((4,), True, True),
        ((2, 2), True, True),  # 4 rows over two leading axes
        ((5,), True, False),
        ((3, 2), True, False),
        ((1,), False, False),  # with gradients possible: bfloat16 operands from 1 row on
    ],
    ids=["1", "4", "2x2", "5", "3x2", "1-not-forward-only"],
)
def test_native_cpus_multiply_few_forward_only_rows_in_float32(
    monkeypatch, case, lead, forward_only, float32_products
):
    params, _ = case
    monkeypatch.setattr(_hardware, "upcast_matmuls", lambda dtype: False)
    monkeypatch.setattr(_hardware, "bfloat16_dots", lambda dtype: dtype == BF16)
    x = jax.random.normal(jax.random.key(5), (*lead, IN)).astype(BF16)
    fn = lambda p, v: _forward(p, v, forward_only)
    operands = ("float32", "float32") if float32_products else ("bfloat16", "bfloat16")
    assert _dot_operand_dtypes(fn, params, x) == [operands]
    y = jax.jit(fn)(params, x)
    assert y.dtype == BF16 and y.shape == (*lead, OUT)
    kernel = params["kernel"] if float32_products else _rounded(params["kernel"])
    exact = x.astype(F32) @ kernel + params["bias"].reshape((1,) * len(lead) + (OUT,))
    np.testing.assert_allclose(
        np.asarray(y, np.float32), np.asarray(_rounded(exact)), rtol=2**-7, atol=1e-6
    )


@pytest.mark.parametrize(("rows", "rounded"), [(4, False), (5, True)])
def test_precision_operands_are_not_rounded_for_few_forward_only_rows(
    monkeypatch, case, rows, rounded
):
    """``fit(precision="bfloat16")``'s float32 model: few forward-only rows stay float32."""
    from nnjax.functional import _bfloat16_dot

    params, _ = case
    monkeypatch.setattr(_hardware, "bfloat16_dots", lambda dtype: dtype == BF16)
    x = jax.random.normal(jax.random.key(6), (rows, IN))
    with _bfloat16_dot.bfloat16_operands():
        dtypes = _dot_operand_dtypes(_forward, params, x)
    assert dtypes == [("bfloat16", "bfloat16") if rounded else ("float32", "float32")]
