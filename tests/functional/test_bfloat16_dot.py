"""``_bfloat16_dot.matmul``: bfloat16 operands, float32 sums, against float64 references;
its hand-written gradients in a library program; the form XLA:CPU runs natively."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax import _hardware
from nnjax.functional import _bfloat16_dot, _conv_compiler

from ._backend import requires_library_programs

BF16, F32 = jnp.bfloat16, jnp.float32


def _f64(a):
    return np.asarray(jnp.asarray(a).astype(F32), np.float64)


def _bf16_values(a):
    """``a`` rounded to bfloat16, as float64: what the matmul multiplies."""
    return _f64(jnp.asarray(a).astype(BF16))


def _case(key, lead=(6, 5), n_in=40, n_out=24):
    kx, kk = jax.random.split(key)
    return jax.random.normal(kx, (*lead, n_in)), jax.random.normal(kk, (n_in, n_out))


def _close(actual, expected, rtol):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(_f64(actual), expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("library", [False, True])
def test_matmul_sums_the_rounded_operands_in_float32(key, library):
    x, kernel = _case(key)
    run = _conv_compiler.jit if library else jax.jit
    y = run(_bfloat16_dot.matmul)(x, kernel)
    assert y.dtype == F32 and y.shape == (6, 5, 24)
    want = np.einsum("abi,io->abo", _bf16_values(x), _bf16_values(kernel))
    _close(y, want, 1e-5)  # float32 sums of exact bfloat16 products


# off the CPU the library's hand-written gradients are never traced: autodiff's instead
@pytest.mark.parametrize("library", [False, pytest.param(True, marks=requires_library_programs)])
@pytest.mark.parametrize("x_dtype", [F32, BF16])
def test_matmul_gradients_are_matmuls_of_the_rounded_values(key, library, x_dtype):
    x, kernel = _case(key)
    x = x.astype(x_dtype)
    dy = jax.random.normal(jax.random.key(7), (6, 5, 24))
    loss = lambda x, k: jnp.sum(_bfloat16_dot.matmul(x, k) * dy)
    run = _conv_compiler.jit if library else jax.jit
    dx, dk = run(jax.grad(loss, argnums=(0, 1)))(x, kernel)
    assert dx.dtype == x_dtype and dk.dtype == F32
    xb, kb, dyb = _bf16_values(x), _bf16_values(kernel), _bf16_values(dy)
    # the library's gradients are float32 sums of bfloat16 products, rounded only to the
    # operand's dtype; autodiff's pass through the bfloat16 casts (rounded results)
    exact_dx = library and x_dtype == F32
    _close(dx, np.einsum("abo,io->abi", dyb, kb), 1e-5 if exact_dx else 2**-7)
    _close(dk, np.einsum("abi,abo->io", xb, dyb), 1e-5 if library else 2**-7)


def test_library_gradients_do_not_recompile(key):
    x, kernel = _case(key)
    traces = []

    def loss(x, k):
        traces.append(1)
        return jnp.sum(_bfloat16_dot.matmul(x, k))

    step = _conv_compiler.jit(jax.grad(loss, argnums=(0, 1)))
    step(x, kernel)
    step(x + 1.0, kernel * 2.0)
    assert len(traces) == 1


@pytest.mark.parametrize("lead", [(1, 6), (3, 4)])
def test_leading_contraction_sums_bfloat16_products_over_the_leading_axes(key, lead):
    a, b = jax.random.normal(key, (*lead, 5)), jax.random.normal(jax.random.key(2), (*lead, 3))
    got = _conv_compiler.jit(_bfloat16_dot.leading_contraction)(a, b)
    assert got.dtype == F32 and got.shape == (5, 3)
    want = np.einsum("tbk,tbn->kn", _bf16_values(a), _bf16_values(b))
    _close(got, want, 1e-6)


def _dot_operand_widenings(text: str) -> int:
    """Conversions of bfloat16 to float32 in a compiled program's text."""
    return sum("convert(" in line and "= f32" in line for line in text.splitlines())


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's matmul rewriting")
def test_library_step_keeps_every_matmul_on_bfloat16_operands(key):
    """All three matmuls (forward, input and kernel gradient) take bfloat16 operands."""
    x, kernel = _case(key, lead=(64,), n_in=96, n_out=64)
    x = x.astype(BF16)
    plain = jax.jit(lambda a, b: jax.lax.dot(a, b, preferred_element_type=F32))
    if "__ynn" not in plain.lower(x, kernel.astype(BF16)).compile().as_text():
        pytest.skip("this jaxlib's XLA:CPU has no YNNPACK matmuls")
    grad = jax.grad(lambda a, b: jnp.sum(_bfloat16_dot.matmul(a, b) ** 2), argnums=(0, 1))
    text = _conv_compiler.jit(grad).lower(x, kernel).compile().as_text()
    autodiff = jax.grad(
        lambda a, b: jnp.sum(jax.lax.dot(a, b.astype(BF16), preferred_element_type=F32) ** 2),
        argnums=(0, 1),
    )
    before = jax.jit(autodiff).lower(x, kernel).compile().as_text()
    # autodiff's kernel gradient contracts a transposed operand: XLA widens both to float32
    assert _dot_operand_widenings(text) < _dot_operand_widenings(before)
    assert text.count("__ynn") >= 3


def test_dense_takes_the_native_form_where_the_cpu_has_bfloat16_dots(monkeypatch, key):
    monkeypatch.setattr(_hardware, "upcast_matmuls", lambda dtype: False)
    monkeypatch.setattr(_hardware, "bfloat16_dots", lambda dtype: dtype == BF16)
    params = F.dense_init(key, 40, 24)
    params["bias"] = jax.random.normal(jax.random.key(3), (24,))
    x, _ = _case(key)
    # a fresh function: JAX keys its traces on the function, not on the patched hardware
    y = jax.jit(lambda p, v: F.dense(p, v))(params, x.astype(BF16))
    assert y.dtype == BF16
    exact = np.einsum("abi,io->abo", _bf16_values(x), _bf16_values(params["kernel"]))
    exact = exact + _f64(params["bias"])
    # float32 sums and a float32 bias, then ONE rounding to bfloat16
    _close(y, _bf16_values(exact.astype(np.float32)), 1e-6)
    grads = _conv_compiler.jit(jax.grad(lambda p: jnp.sum(F.dense(p, x.astype(BF16)))))(params)
    assert jax.tree.map(lambda a: a.dtype, grads) == {"bias": F32, "kernel": F32}
    _close(grads["bias"], np.full(24, 30.0), 1e-6)
