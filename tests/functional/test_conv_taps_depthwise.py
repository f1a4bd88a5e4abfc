"""``_conv_taps.depthwise_reverse``: the depthwise taps with a one-pass kernel gradient.

Checked against the plain-autodiff :func:`depthwise` (values and both gradients, for
strides, dilations, uneven padding, channel multipliers, 1-D to 3-D kernels and
bfloat16), against finite differences to second order, and where ``"auto"`` uses it:
in library programs (``fit``'s), never in plain ``jax.jit`` (which keeps forward mode).
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional import _conv_compiler as compiler
from nnjax.functional import _conv_taps as taps


def _rand(shape, seed, dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


# (input shape, kernel size, multiplier, strides, pads, dilation)
CASES = {
    "3x3": ((2, 7, 6, 3), (3, 3), 1, (1, 1), ((1, 1), (1, 1)), (1, 1)),
    "strided, dilated, uneven": ((2, 9, 8, 3), (3, 2), 2, (2, 1), ((1, 1), (0, 1)), (1, 2)),
    "5x5 valid": ((3, 8, 8, 2), (5, 5), 1, (1, 1), ((0, 0), (0, 0)), (1, 1)),
    "1-D": ((2, 11, 4), (3,), 3, (2,), ((2, 1),), (1,)),
    "3-D": ((1, 4, 5, 4, 2), (2, 3, 2), 1, (1, 1, 1), ((0, 1), (1, 1), (1, 0)), (1, 1, 1)),
}


def _operands(case, dtype=np.float32):
    x_shape, kernel_size, multiplier, strides, pads, dilation = CASES[case]
    x = _rand(x_shape, 1, dtype)
    kernel = _rand((*kernel_size, 1, x_shape[-1] * multiplier), 2, dtype)
    return x, kernel, (strides, pads, dilation)


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_and_gradients_equal_plain_autodiffs(case):
    x, kernel, static = _operands(case)
    y_shape = jax.eval_shape(lambda x, k: taps.depthwise(x, k, *static), x, kernel).shape
    cotangent = _rand(y_shape, 3)

    # One program per formulation: op by op, the taps' many small ops took 3-12 s a case.
    @functools.partial(jax.jit, static_argnums=0)
    def value_and_vjp(conv, x, kernel, cotangent):
        y, vjp = jax.vjp(lambda x, k: conv(x, k, *static), x, kernel)
        return y, vjp(cotangent)

    plain, plain_grads = value_and_vjp(taps.depthwise, x, kernel, cotangent)
    fast, fast_grads = value_and_vjp(taps.depthwise_reverse, x, kernel, cotangent)
    np.testing.assert_array_equal(fast, plain)
    for got, want in zip(fast_grads, plain_grads):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_bfloat16_kernel_gradient_sums_in_float32_and_rounds_once():
    x, kernel, static = _operands("3x3", jnp.bfloat16)
    g = _rand(taps.depthwise(x, kernel, *static).shape, 3, jnp.bfloat16)
    got = taps.depthwise_kernel_grad(x, g, kernel, *static)
    f32 = lambda a: a.astype(jnp.float32)
    _, vjp = jax.vjp(lambda k: taps.depthwise(f32(x), k, *static), f32(kernel))
    (exact,) = vjp(f32(g))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(f32(got), exact, rtol=2**-8, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["strided, dilated, uneven", "1-D"])
def test_check_grads_to_second_order_in_reverse_mode(case):
    x_shape, kernel_size, multiplier, strides, pads, dilation = CASES[case]
    with jax.enable_x64(True):
        x = _rand(x_shape, 1, np.float64)
        kernel = _rand((*kernel_size, 1, x_shape[-1] * multiplier), 2, np.float64)
        conv = lambda x, k: taps.depthwise_reverse(x, k, strides, pads, dilation)
        check_grads(conv, (x, kernel), order=2, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_forward_mode_is_refused_as_documented():
    x, kernel, static = _operands("3x3")
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda k: taps.depthwise_reverse(x, k, *static), (kernel,), (kernel,))


def _depthwise_grad_jaxpr(library: bool) -> str:
    params = F.conv2d_init(jax.random.key(0), 4, 8, 3, feature_group_count=4)
    x = _rand((2, 9, 9, 4), 1)
    loss = lambda p: jnp.sum(F.conv2d(p, x, feature_group_count=4) ** 2)
    with compiler.library_convolutions(library):
        return str(jax.make_jaxpr(jax.grad(loss))(params))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the depthwise taps are the CPU's")
@pytest.mark.slow
def test_auto_uses_it_in_library_programs_only():
    one_pass = re.compile(r"\breduce\[")  # the variadic reduction of every tap
    library, plain = _depthwise_grad_jaxpr(library=True), _depthwise_grad_jaxpr(library=False)
    assert one_pass.search(library) and "optimization_barrier" in library
    assert not one_pass.search(plain) and "optimization_barrier" not in plain
    # outside library programs forward mode still works
    params = F.conv2d_init(jax.random.key(0), 4, 8, 3, feature_group_count=4)
    x = _rand((2, 9, 9, 4), 1)
    _, tangent = jax.jvp(lambda x: F.conv2d(params, x, feature_group_count=4), (x,), (x,))
    assert tangent.shape == (2, 9, 9, 8)
