"""Tests for 1-D/3-D max and average pooling and global pooling against PyTorch."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.errors import ShapeError

from ._compare import assert_matches_torch
from ._torch_ref import torch
from ._transforms import assert_transforms

TF = torch.nn.functional


def _distinct(shape, seed):
    """Inputs without ties, so max-pool gradients are unambiguous."""
    values = np.random.default_rng(seed).permutation(math.prod(shape)).astype(np.float64)
    return values.reshape(shape) / 10.0


def _same_pads(size, window, stride):
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _torch_pool(kind, x, window, stride, padding, count_include_pad):
    """Channels-last torch tensor in and out; TF's SAME rule written out with F.pad."""
    nd = x.ndim - 2
    xc = x.movedim(-1, 1)
    pads = [(0, 0)] * nd
    if padding == "SAME":
        pads = [_same_pads(n, w, s) for n, w, s in zip(xc.shape[2:], window, stride)]
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]  # torch pads the last axis first
    pool = getattr(TF, f"{kind}_pool{nd}d")
    if kind == "max":
        y = pool(TF.pad(xc, flat, value=-math.inf), window, stride)
    else:
        total = pool(TF.pad(xc, flat), window, stride) * math.prod(window)
        count = math.prod(window)
        if not count_include_pad:
            count = pool(TF.pad(torch.ones_like(xc), flat), window, stride) * count
        y = total / count
    return y.movedim(1, -1)


CASES = [
    # (spatial, window, stride, padding)
    ((7,), (2,), (2,), "VALID"),
    ((7,), (3,), (2,), "SAME"),
    ((4, 5, 4), (2, 2, 2), (2, 2, 2), "VALID"),
    ((4, 5, 3), (2, 3, 2), (1, 2, 2), "SAME"),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("spatial", "window", "stride", "padding"), CASES)
def test_matches_torch_outputs_and_grads(kind, spatial, window, stride, padding):
    nd = len(spatial)
    x = _distinct((2, *spatial, 2), 1)
    op = getattr(F, f"{kind}_pool{nd}d")
    fn = lambda x: op(x, window, stride, padding)
    torch_fn = lambda x: _torch_pool(kind, x, window, stride, padding, False)
    assert_matches_torch(fn, torch_fn, (x,))


def test_avg_pool_count_include_pad():
    x = _distinct((1, 5, 2, 3, 1), 2)
    fn = lambda x: F.avg_pool3d(x, 2, 2, "SAME", count_include_pad=True)
    torch_fn = lambda x: _torch_pool("avg", x, (2, 2, 2), (2, 2, 2), "SAME", True)
    assert_matches_torch(fn, torch_fn, (x,))


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 3, 4, 3), (2, 2, 3, 2, 3)])
def test_global_pools_match_torch(shape):
    x = _distinct(shape, 3)
    axes = tuple(range(1, len(shape) - 1))
    assert_matches_torch(F.global_avg_pool, lambda x: x.mean(dim=axes), (x,))
    assert_matches_torch(F.global_max_pool, lambda x: x.amax(dim=axes), (x,))
    assert F.global_avg_pool(x, keepdims=True).shape == (2, *(1,) * len(axes), 3)


@pytest.mark.parametrize("op", [F.global_avg_pool, F.global_max_pool])
def test_global_pool_of_no_positions_is_a_shape_error(op):  # was NaN, or JAX's reduction error
    with pytest.raises(ShapeError, match=r"global_\w+_pool: argument `x` has shape \(2, 0, 3\)"):
        op(jnp.ones((2, 0, 3)))


def test_check_grads():
    x = _distinct((1, 5, 2), 4)
    with jax.enable_x64(True):
        for fn in (
            lambda x: F.avg_pool1d(x, 2, 1, "SAME"),
            lambda x: F.max_pool3d(x[:, :, None, None], (2, 1, 1), 2, "SAME"),
            F.global_avg_pool,
        ):
            check_grads(jax.jit(fn), (x,), order=1)


@pytest.mark.slow  # five transform compiles: among the slowest of the default run (2026-12-01)
@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.max_pool1d(x, 2),
        lambda x: F.avg_pool1d(x, 3, 1, "SAME"),
        lambda x: F.global_max_pool(x),
        lambda x: F.global_avg_pool(x),
        lambda x: F.max_pool3d(x[:, :, None, None, :], (2, 1, 1)),
    ],
)
def test_jit_vmap_grad_float32_bfloat16(key, fn):
    assert_transforms(fn, jax.random.normal(key, (2, 4, 3)))


def test_errors_name_op_and_argument():
    with pytest.raises(AssertionError, match=r"max_pool1d: argument `x` has shape \(4, 3\)"):
        F.max_pool1d(jnp.ones((4, 3)), 2)
    with pytest.raises(AssertionError, match=r"avg_pool3d: argument `x`.*expected rank 5"):
        F.avg_pool3d(jnp.ones((1, 4, 4, 3)), 2)
    with pytest.raises(ValueError, match=r"max_pool3d: `window` must be .* a triple"):
        F.max_pool3d(jnp.ones((1, 4, 4, 4, 1)), (2, 2))
    with pytest.raises(ValueError, match=r"avg_pool1d: argument `x` has shape \(1, 2, 1\).*\(3,\)"):
        F.avg_pool1d(jnp.ones((1, 2, 1)), 3)
    with pytest.raises(ValueError, match=r"max_pool1d: `padding` must be 'SAME', 'VALID', "):
        F.max_pool1d(jnp.ones((1, 4, 1)), 2, padding="FULL")
    with pytest.raises(AssertionError, match=r"global_avg_pool: argument `x` has shape \(2, 3\)"):
        F.global_avg_pool(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="global_max_pool: argument `x` has dtype int32"):
        F.global_max_pool(jnp.ones((2, 3, 3), jnp.int32))
