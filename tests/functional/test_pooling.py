"""Tests for nnjax.functional max/avg pooling: worked example, PyTorch reference, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax import _hardware

from ._backend import ON_CPU
from ._torch_ref import (
    assert_close,
    nchw_to_nhwc,
    nhwc_to_nchw,
    to_numpy,
    to_torch,
    torch,
    value_and_vjp,
)
from ._transforms import assert_transforms

tnn = torch.nn.functional


def test_course_worked_example_max_pool():
    x = jnp.array([[1.0, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    y = F.max_pool2d(x[None, :, :, None], 2, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [3, 4]])


def _distinct(shape, seed):
    """Inputs without ties (max-pool gradients are then unambiguous)."""
    values = np.random.default_rng(seed).permutation(math.prod(shape)).astype(np.float64)
    return values.reshape(shape) / 10.0


def _same_pads(size, window, stride):
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _torch_pool(kind, x, window, stride, padding, count_include_pad):
    """Reference on NCHW tensors: explicit F.pad (TF's SAME rule), then torch pooling."""
    if padding == "SAME":
        (top, bottom), (left, right) = (
            _same_pads(n, w, s) for n, w, s in zip(x.shape[2:], window, stride)
        )
    else:
        top = bottom = left = right = 0
    pads = (left, right, top, bottom)
    if kind == "max":
        return tnn.max_pool2d(tnn.pad(x, pads, value=-math.inf), window, stride)
    total = tnn.avg_pool2d(tnn.pad(x, pads), window, stride) * math.prod(window)
    if count_include_pad:
        return total / math.prod(window)
    count = tnn.avg_pool2d(tnn.pad(torch.ones_like(x), pads), window, stride)
    return total / (count * math.prod(window))


CASES = [
    # (H, W, window, stride, padding)
    (4, 4, (2, 2), (2, 2), "VALID"),
    (5, 5, (2, 2), (2, 2), "VALID"),
    (6, 5, (3, 2), (1, 2), "VALID"),
    (5, 5, (2, 2), (2, 2), "SAME"),  # pad 0 before, 1 after
    (5, 6, (3, 3), (1, 1), "SAME"),
    (7, 7, (3, 3), (2, 2), "SAME"),
]


@pytest.mark.parametrize("kind", ["max", "avg_exclude_pad", "avg_include_pad"])
@pytest.mark.parametrize(("h", "w", "window", "stride", "padding"), CASES)
def test_matches_torch_outputs_and_grads(kind, h, w, window, stride, padding):
    x = _distinct((2, h, w, 3), h * w)
    include = kind == "avg_include_pad"
    tx = to_torch(nhwc_to_nchw(x), requires_grad=True)
    ty = _torch_pool(kind[:3], tx, window, stride, padding, include)
    cot = np.random.default_rng(0).standard_normal(nchw_to_nhwc(ty).shape)
    (ty * to_torch(nhwc_to_nchw(cot))).sum().backward()

    if kind == "max":
        pool = lambda x: F.max_pool2d(x, window, stride, padding)
    else:
        pool = lambda x: F.avg_pool2d(x, window, stride, padding, count_include_pad=include)
    with jax.enable_x64(True):
        y, (g_x,) = value_and_vjp(pool, x, cotangent=cot)

    assert_close(y, nchw_to_nhwc(to_numpy(ty)))
    assert_close(g_x, nchw_to_nhwc(to_numpy(tx.grad)))


def test_avg_pool_same_excluding_pad_matches_torch_builtin():
    """Symmetric SAME padding: torch's own count_include_pad=False is the referee."""
    x = _distinct((1, 5, 5, 2), 3)
    expected = tnn.avg_pool2d(to_torch(nhwc_to_nchw(x)), 3, 1, padding=1, count_include_pad=False)
    with jax.enable_x64(True):
        y = F.avg_pool2d(x, 3, 1, "SAME")
    assert_close(y, nchw_to_nhwc(to_numpy(expected)))


def test_stride_defaults_to_window():
    x = jnp.arange(36.0).reshape(1, 6, 6, 1)
    np.testing.assert_array_equal(F.max_pool2d(x, 3), F.max_pool2d(x, 3, 3))
    np.testing.assert_array_equal(F.avg_pool2d(x, (2, 3)), F.avg_pool2d(x, (2, 3), (2, 3)))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_check_grads(kind):
    x = _distinct((1, 4, 5, 2), 1)
    op = F.max_pool2d if kind == "max" else F.avg_pool2d
    # XLA:GPU has no pair reduction of 64-bit values: there JAX's forward mode of max
    # pooling (select_and_gather_add) keeps 20 of float64's 52 mantissa bits and warns.
    # Order 1 compares that tangent (~1e-6 off) with finite differences of exact values;
    # order 2 takes finite differences of the tangent itself (~1e-3 off). The CPU: exact.
    order = 2 if kind == "avg" or ON_CPU else 1
    with jax.enable_x64(True):
        pool = jax.jit(lambda x: op(x, 2, 1, "SAME"))
        check_grads(pool, (x,), order=order, modes=("fwd", "rev"), eps=1e-3)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_jit_vmap_grad_float32_bfloat16(op):
    x = _distinct((2, 5, 5, 2), 0).astype(np.float32)
    assert_transforms(lambda x: op(x, 2, padding="SAME"), x)


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_max_pool_is_exact_with_or_without_native_bfloat16(native, monkeypatch):
    """Emulated bfloat16 pools in float32 (faster there): the same values and gradients."""
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: native)
    x = jnp.asarray(_distinct((2, 5, 5, 3), 2), jnp.bfloat16)
    cot = jnp.asarray(_distinct((2, 3, 3, 3), 3), jnp.bfloat16)
    pool = lambda x: F.max_pool2d(x, 2, padding="SAME")
    y, vjp = jax.vjp(pool, x)
    y32, vjp32 = jax.vjp(pool, x.astype(jnp.float32))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(y, np.float32), np.asarray(y32))
    (dx,), (dx32,) = vjp(cot), vjp32(cot.astype(jnp.float32))
    assert dx.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(dx, np.float32), np.asarray(dx32))


@pytest.mark.parametrize("formulation", ["reduce_window", "reshape"])
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_avg_pool_of_narrow_floats_sums_in_float32(dtype, formulation):
    """float16 window sums overflowed (1e4 * 16 > 65504: inf); bfloat16 ones lost 4%."""
    x = np.full((1, 8, 8, 1), 1e4 if dtype == jnp.float16 else 1000.0, np.float32)
    x[0, ::2, ::3] += 7.0  # not constant: a sum rounded per add drifts from the mean
    y = F.avg_pool2d(jnp.asarray(x, dtype), 4, formulation=formulation)
    want = x.reshape(1, 2, 4, 2, 4, 1).astype(np.float64).mean(axis=(2, 4))
    assert y.dtype == dtype
    np.testing.assert_allclose(np.asarray(y, np.float64), want, rtol=2**-8, atol=0)
    y_same = F.avg_pool2d(jnp.asarray(x, dtype), 3, stride=1, padding="SAME")
    ref = F.avg_pool2d(jnp.asarray(x), 3, stride=1, padding="SAME")
    np.testing.assert_allclose(np.asarray(y_same, np.float32), ref, rtol=2**-8, atol=0)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_wrong_rank_names_op_argument_and_shapes(op):
    name = op.__name__
    with pytest.raises(
        AssertionError,
        match=rf"{name}: argument `x` has shape \(4, 4, 1\) \(rank 3\), expected rank 4",
    ):
        jax.jit(op, static_argnums=1)(jnp.ones((4, 4, 1)), 2)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_window_larger_than_image(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}: argument `x` has shape \(1, 2, 4, 1\)"):
        op(jnp.ones((1, 2, 4, 1)), 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 2, "padding": "FULL"}, "`padding` must be 'SAME', 'VALID', "),
        ({"window": 0}, "`window` must be a positive int"),
        ({"window": 2, "stride": (1, 2, 3)}, "`stride` must be a positive int"),
    ],
)
@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_bad_static_arguments(op, kwargs, match):
    with pytest.raises(ValueError, match=f"{op.__name__}: {match}"):
        op(jnp.ones((1, 4, 4, 1)), **kwargs)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_integer_input_raises_type_error(op):
    with pytest.raises(TypeError, match=f"{op.__name__}: argument `x` has dtype int32"):
        op(jnp.ones((1, 4, 4, 1), jnp.int32), 2)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_traced_window_says_to_mark_it_static_and_numpy_ints_work(op):
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    with pytest.raises(
        ValueError, match=rf"{op.__name__}: `window`.*traced.*static_argnames='window'"
    ):
        jax.jit(op)(x, 2)
    fn = jax.jit(op, static_argnames="window")
    np.testing.assert_allclose(fn(x, window=np.int64(2)), op(x, 2), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=rf"{op.__name__}: `window` must be a positive int"):
        op(x, (True, 2))
