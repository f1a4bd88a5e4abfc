"""Tests for conv1d/conv3d, grouped convolution and conv_transpose 1/2/3-D against PyTorch."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional.conv_transpose import output_size

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms

TF = torch.nn.functional


def _same_pads(size, k, stride, dilation):
    span = (k - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _torch_conv(x, kernel, bias, *, stride, padding, dilation, groups):
    """Channels-last tensors in and out: explicit F.pad, then an unpadded torch conv."""
    nd = x.ndim - 2
    xc = x.movedim(-1, 1)
    w = kernel.permute(nd + 1, nd, *range(nd))  # (k..., in/g, out) -> (out, in/g, k...)
    if padding == "VALID":
        pads = [(0, 0)] * nd
    elif padding == "SAME":
        pads = [
            _same_pads(n, k, s, d)
            for n, k, s, d in zip(xc.shape[2:], w.shape[2:], stride, dilation)
        ]
    elif isinstance(padding, int):
        pads = [(padding, padding)] * nd
    else:
        pads = padding
    xc = TF.pad(xc, [p for pair in reversed(pads) for p in pair])
    conv = getattr(TF, f"conv{nd}d")
    y = conv(xc, w, bias, stride=stride, dilation=dilation, groups=groups)
    return y.movedim(1, -1)


CONV_CASES = [
    # (spatial, kernel, stride, padding, dilation, groups)
    ((9,), (3,), (1,), "VALID", (1,), 1),
    ((9,), (4,), (2,), "SAME", (1,), 1),
    ((10,), (3,), (2,), ((2, 1),), (2,), 2),
    ((8,), (3,), (1,), 1, (3,), 4),  # depthwise
    ((5, 6), (3, 2), (1, 2), "SAME", (1, 1), 2),  # grouped 2-D
    ((5, 5), (3, 3), (1, 1), 1, (2, 1), 4),  # depthwise 2-D
    ((5, 4, 6), (3, 2, 3), (1, 1, 2), "VALID", (1, 1, 1), 1),
    ((5, 5, 4), (2, 3, 2), (2, 1, 2), "SAME", (1, 2, 1), 2),
    ((4, 5, 4), (3, 3, 3), (1, 2, 1), ((1, 1), (0, 2), (1, 0)), (1, 1, 1), 1),
]


@pytest.mark.parametrize(
    ("spatial", "k", "stride", "padding", "dilation", "groups"),
    # 3-D cases compile longest: they run in the slow step (measured, 2026-12-01)
    [pytest.param(*c, marks=pytest.mark.slow) if len(c[0]) == 3 else c for c in CONV_CASES],
)
def test_conv_matches_torch(spatial, k, stride, padding, dilation, groups):
    nd = len(spatial)
    x = rand((2, *spatial, 4), 1)
    params = {"kernel": rand((*k, 4 // groups, 4), 2), "bias": rand((4,), 3)}
    kw = {"stride": stride, "padding": padding, "dilation": dilation}
    op = getattr(F, f"conv{nd}d")
    fn = lambda p, x: op(p, x, feature_group_count=groups, **kw)
    torch_fn = lambda p, x: _torch_conv(x, p["kernel"], p["bias"], groups=groups, **kw)
    assert_matches_torch(fn, torch_fn, (params, x))


def _torch_conv_transpose(x, kernel, bias, **kw):
    nd = x.ndim - 2
    w = kernel.permute(nd, nd + 1, *range(nd))  # (k..., in, out) -> (in, out, k...)
    y = getattr(TF, f"conv_transpose{nd}d")(x.movedim(-1, 1), w, bias, **kw)
    return y.movedim(1, -1)


TRANSPOSE_CASES = [
    # (spatial, kernel, stride, padding, output_padding, dilation)
    ((5,), (3,), 1, 0, 0, 1),
    ((5,), (3,), 2, 1, 1, 1),
    ((4,), (4,), 3, 2, 2, 1),
    ((4,), (2,), 2, 2, 1, 1),  # padding > dilation * (k - 1): crops
    ((4, 5), (3, 3), (2, 2), (1, 1), (1, 0), (1, 1)),
    ((3, 4), (2, 3), (2, 1), (0, 2), (1, 1), (1, 2)),
    ((3, 3, 2), (2, 3, 2), (2, 2, 1), (0, 1, 1), (1, 0, 0), (1, 1, 2)),
]


@pytest.mark.parametrize(("spatial", "k", "stride", "padding", "out_pad", "dilation"),
                         TRANSPOSE_CASES)  # fmt: skip
def test_conv_transpose_matches_torch(spatial, k, stride, padding, out_pad, dilation):
    nd = len(spatial)
    x = rand((2, *spatial, 3), 1)
    params = {"kernel": rand((*k, 3, 2), 2), "bias": rand((2,), 3)}
    kw = {"stride": stride, "padding": padding, "output_padding": out_pad, "dilation": dilation}
    op = getattr(F, f"conv_transpose{nd}d")
    fn = lambda p, x: op(p, x, **kw)
    torch_fn = lambda p, x: _torch_conv_transpose(x, p["kernel"], p["bias"], **kw)
    assert_matches_torch(fn, torch_fn, (params, x))
    y = fn(params, x)
    sizes = [output_size(n, kk, *(np.broadcast_to(v, nd)[i] for v in (stride, padding, out_pad,
             dilation))) for i, (n, kk) in enumerate(zip(spatial, k))]  # fmt: skip
    assert y.shape == (2, *sizes, 2)


def test_conv_transpose_is_the_gradient_of_a_strided_conv():
    """The transposed conv is the adjoint (vector-Jacobian product) of conv: <conv(x), y>
    = <x, conv_transpose(y)> with the same kernel and PyTorch's padding rules."""
    x = rand((1, 7, 7, 2), 1)
    kernel = rand((3, 3, 2, 4), 2)
    with jax.enable_x64(True):
        conv = lambda x: F.conv2d({"kernel": kernel}, x, stride=2, padding=1)
        y, pullback = jax.vjp(conv, jnp.asarray(x))
        cot = rand(y.shape, 3)
        (expected,) = pullback(jnp.asarray(cot))
        # conv_transpose maps out -> in channels, so its kernel is (k, k, out=4, in=2):
        # swap the channel axes of the conv kernel.
        tkernel = {"kernel": jnp.swapaxes(jnp.asarray(kernel), 2, 3)}
        got = F.conv_transpose2d(tkernel, cot, stride=2, padding=1, output_padding=0)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_inits(key):
    assert F.conv1d_init(key, 4, 6, 3, feature_group_count=2)["kernel"].shape == (3, 2, 6)
    assert F.conv3d_init(key, 2, 5, (1, 2, 3))["kernel"].shape == (1, 2, 3, 2, 5)
    params = F.conv_transpose2d_init(key, 8, 3, 2, dtype=jnp.bfloat16, use_bias=False)
    assert set(params) == {"kernel"} and params["kernel"].shape == (2, 2, 8, 3)
    assert params["kernel"].dtype == jnp.bfloat16


def test_check_grads():
    x = rand((1, 4, 2), 1)
    with jax.enable_x64(True):
        p = {"kernel": rand((2, 1, 4), 2), "bias": rand((4,), 3)}
        conv = lambda p, x: F.conv1d(p, x, stride=2, feature_group_count=2)
        check_grads(jax.jit(conv), (p, x), order=1)
        p = {"kernel": rand((3, 2, 3), 4), "bias": rand((3,), 5)}
        tconv = lambda p, x: F.conv_transpose1d(p, x, stride=2, padding=1, output_padding=1)
        check_grads(jax.jit(tconv), (p, x), order=1)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize(
    ("fn", "params", "shape"),
    [
        (lambda p, x: F.conv1d(p, x, feature_group_count=2), {"kernel": (3, 1, 2)}, (2, 5, 2)),
        (F.conv3d, {"kernel": (2, 2, 2, 1, 2)}, (1, 3, 3, 3, 1)),
        (lambda p, x: F.conv_transpose2d(p, x, stride=2), {"kernel": (2, 2, 2, 3)}, (1, 3, 3, 2)),
    ],
)
def test_jit_vmap_grad_float32_bfloat16(key, fn, params, shape):
    params = {n: jax.random.normal(key, s) for n, s in params.items()}
    params["bias"] = jnp.ones(params["kernel"].shape[-1])
    assert_transforms(fn, params, jax.random.normal(key, shape))


def test_errors_name_op_argument_and_value(key):
    p1 = F.conv1d_init(key, 4, 4, 3, feature_group_count=2)
    with pytest.raises(AssertionError, match=r"conv1d: argument `x` has shape \(1, 5, 2\)"):
        F.conv1d(p1, jnp.ones((1, 5, 2)), feature_group_count=2)
    with pytest.raises(ValueError, match=r"conv1d: `feature_group_count`=3 must divide"):
        F.conv1d(p1, jnp.ones((1, 5, 6)), feature_group_count=3)
    with pytest.raises(ValueError, match=r"conv1d_init: `feature_group_count`=3 must divide"):
        F.conv1d_init(key, 4, 4, 3, feature_group_count=3)
    with pytest.raises(AssertionError, match=r"conv3d: argument `x` has shape \(1, 4, 4, 1\)"):
        F.conv3d(F.conv3d_init(key, 1, 1, 2), jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"conv3d: `padding` must be .*three \(lo, hi\) pairs"):
        F.conv3d(F.conv3d_init(key, 1, 1, 2), jnp.ones((1, 4, 4, 4, 1)), padding=((1, 1),))
    pt = F.conv_transpose1d_init(key, 2, 2, 3)
    with pytest.raises(ValueError, match=r"conv_transpose1d: `output_padding`=2 must be"):
        F.conv_transpose1d(pt, jnp.ones((1, 4, 2)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose1d: `padding` must be 'SAME', 'VALID'"):
        F.conv_transpose1d(pt, jnp.ones((1, 4, 2)), padding=-1)
    with pytest.raises(ValueError, match=r"conv_transpose1d: argument `x` has shape \(1, 1, 2\)"):
        F.conv_transpose1d(pt, jnp.ones((1, 1, 2)), padding=2)
    with pytest.raises(AssertionError, match=r"conv_transpose1d: argument `x` has shape"):
        F.conv_transpose1d(pt, jnp.ones((1, 4, 3)))
