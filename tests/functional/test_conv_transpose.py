"""Tests for grouped and "SAME"-padded conv_transpose 1/2/3-D (PyTorch, lax and adjoints)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional.conv_transpose import grouped_kernel, same_pads

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms

TF = torch.nn.functional
_LAYOUT = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _torch_conv_transpose(x, kernel, bias, **kw):
    """Channels-last in and out; kernel ``(k..., in, out/g)`` is torch's ``(in, out/g, k...)``."""
    nd = x.ndim - 2
    w = kernel.permute(nd, nd + 1, *range(nd))
    y = getattr(TF, f"conv_transpose{nd}d")(x.movedim(-1, 1), w, bias, **kw)
    return y.movedim(1, -1)


GROUP_CASES = [
    # (spatial, kernel, stride, padding, output_padding, dilation, in, out, groups)
    ((6,), (3,), 2, 1, 1, 1, 4, 6, 2),
    ((5,), (2,), 1, 0, 0, 2, 3, 3, 3),  # depthwise
    ((4, 5), (3, 2), (2, 1), (1, 0), (1, 0), (1, 1), 6, 4, 2),
    ((3, 4), (2, 3), (2, 2), 0, (1, 1), (1, 2), 4, 4, 4),  # depthwise 2-D
    ((3, 2, 3), (2, 2, 3), (1, 2, 2), (0, 0, 1), (0, 1, 0), 1, 4, 2, 2),
]


@pytest.mark.parametrize(
    ("spatial", "k", "stride", "padding", "out_pad", "dilation", "cin", "cout", "groups"),
    GROUP_CASES,
)
def test_grouped_matches_torch(spatial, k, stride, padding, out_pad, dilation, cin, cout, groups):
    nd = len(spatial)
    x = rand((2, *spatial, cin), 1)
    params = {"kernel": rand((*k, cin, cout // groups), 2), "bias": rand((cout,), 3)}
    kw = {"stride": stride, "padding": padding, "output_padding": out_pad, "dilation": dilation}
    op = getattr(F, f"conv_transpose{nd}d")
    fn = lambda p, x: op(p, x, feature_group_count=groups, **kw)
    torch_fn = lambda p, x: _torch_conv_transpose(x, p["kernel"], p["bias"], groups=groups, **kw)
    assert_matches_torch(fn, torch_fn, (params, x))


def test_grouped_is_one_transposed_conv_per_group():
    """An independent reference: groups are separate convolutions, concatenated."""
    x = rand((2, 5, 6), 1)
    kernel = rand((3, 6, 2), 2)
    with jax.enable_x64(True):
        y = F.conv_transpose1d({"kernel": kernel}, x, stride=2, feature_group_count=3)
        parts = [
            F.conv_transpose1d({"kernel": kernel[:, 2 * g : 2 * g + 2]}, x[..., 2 * g : 2 * g + 2],
                               stride=2)
            for g in range(3)
        ]  # fmt: skip
    np.testing.assert_allclose(y, np.concatenate(parts, axis=-1), rtol=1e-12, atol=1e-12)


def test_grouped_kernel_layout():
    kernel = np.arange(2 * 4 * 3).reshape(2, 4, 3)  # (k, in, out / G) with G = 2
    got = np.asarray(grouped_kernel(jnp.asarray(kernel), 2))
    assert got.shape == (2, 2, 6)
    np.testing.assert_array_equal(got[:, :, :3], kernel[:, :2])  # group 0: inputs 0-1
    np.testing.assert_array_equal(got[:, :, 3:], kernel[:, 2:])  # group 1: inputs 2-3


SAME_CASES = [
    # (spatial, kernel, stride, dilation)
    ((7,), (3,), 2, 1),
    ((7,), (4,), 2, 1),
    ((6,), (2,), 3, 1),
    ((5,), (1,), 2, 1),
    ((5,), (3,), 1, 1),
    ((5,), (2,), 1, 1),
    ((6,), (3,), 2, 2),
    ((4, 5), (3, 4), (2, 3), (1, 1)),
    ((3, 4, 2), (2, 3, 3), (2, 1, 3), (1, 2, 1)),
]


@pytest.mark.parametrize(("spatial", "k", "stride", "dilation"), SAME_CASES)
def test_same_matches_lax_conv_transpose(spatial, k, stride, dilation):
    """``"SAME"`` follows ``lax.conv_transpose`` (TensorFlow, Keras): size ``n * stride``."""
    nd = len(spatial)
    stride, dilation = np.broadcast_to(stride, nd).tolist(), np.broadcast_to(dilation, nd).tolist()
    x = rand((2, *spatial, 3), 1)
    kernel = rand((*k, 3, 4), 2)
    with jax.enable_x64(True):
        op = getattr(F, f"conv_transpose{nd}d")
        y = op({"kernel": kernel}, x, stride=stride, padding="SAME", dilation=dilation)
        expected = lax.conv_transpose(
            x, np.swapaxes(kernel, -1, -2), stride, "SAME", rhs_dilation=dilation,
            dimension_numbers=_LAYOUT[nd], transpose_kernel=True,
        )  # fmt: skip
    assert y.shape == (2, *(n * s for n, s in zip(spatial, stride)), 4)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


def _torch_same(k, s, d):
    """PyTorch's ``(padding, output_padding)`` for nnjax's "SAME", if it has one."""
    span = d * (k - 1) + 1
    lo, hi = same_pads(k, s, d)
    crop_lo, crop_hi = span - 1 - lo, span - 1 - hi  # torch crops p, then adds op at the end
    op = crop_lo - crop_hi
    if crop_lo < 0 or not 0 <= op < max(s, d):
        return None
    return crop_lo, op


@pytest.mark.parametrize(
    ("spatial", "k", "stride", "dilation", "groups"),
    [((7,), (3,), 1, 1, 2), ((6,), (2,), 3, 1, 1), ((6,), (3,), 3, 2, 2), ((4, 5), (4, 1), 2, 1, 1),
     ((3, 2, 3), (5, 1, 3), (3, 2, 1), 1, 2)],
)  # fmt: skip
def test_same_matches_torch_where_expressible(spatial, k, stride, dilation, groups):
    """Where PyTorch's padding rules can express "SAME", outputs and grads agree with it."""
    nd = len(spatial)
    stride, dilation = np.broadcast_to(stride, nd).tolist(), np.broadcast_to(dilation, nd).tolist()
    pairs = [_torch_same(*a) for a in zip(k, stride, dilation)]
    assert all(pairs), pairs  # each case is chosen to be expressible
    x = rand((2, *spatial, 4), 1)
    params = {"kernel": rand((*k, 4, 4 // groups), 2), "bias": rand((4,), 3)}
    op = getattr(F, f"conv_transpose{nd}d")
    kw = {"stride": tuple(stride), "dilation": tuple(dilation), "groups": groups}
    fn = lambda p, x: op(p, x, stride=kw["stride"], dilation=kw["dilation"], padding="SAME",
                         feature_group_count=groups)  # fmt: skip
    torch_fn = lambda p, x: _torch_conv_transpose(
        x, p["kernel"], p["bias"], padding=tuple(p for p, _ in pairs),
        output_padding=tuple(o for _, o in pairs), **kw,
    )  # fmt: skip
    assert_matches_torch(fn, torch_fn, (params, x))


@pytest.mark.parametrize(
    ("stride", "groups"),
    [
        pytest.param(2, 1, marks=pytest.mark.slow),
        (2, 2),
        pytest.param(3, 3, marks=pytest.mark.slow),
    ],
)  # two of three in the slow step (measured among the slowest, 2026-12-01)
def test_same_is_the_adjoint_of_a_same_conv(stride, groups):
    """``<conv(x), y> = <x, conv_transpose(y)>``: the VJP of F.conv2d "SAME" (grouped).

    (Exact when the input sizes are multiples of the stride, as in TensorFlow.)
    """
    x = rand((1, 6, 12, 6), 1)  # sizes divisible by the stride
    kernel = rand((3, 2, 6 // groups, 6), 2)  # conv: 6 -> 6 channels in `groups` groups
    with jax.enable_x64(True):
        conv = lambda x: F.conv2d(
            {"kernel": kernel}, x, stride=stride, padding="SAME", feature_group_count=groups
        )
        y, pullback = jax.vjp(conv, jnp.asarray(x))
        cot = rand(y.shape, 3)
        (expected,) = pullback(jnp.asarray(cot))
        # The transposed kernel maps conv outputs to conv inputs: (k, out, in / groups),
        # group by group.
        k = kernel.reshape(3, 2, 6 // groups, groups, 6 // groups)  # (k, in/G, G, out/G)
        tkernel = np.moveaxis(k, 2, 4).reshape(3, 2, 6, 6 // groups)  # (k, out, in/G)
        got = F.conv_transpose2d(
            {"kernel": tkernel}, cot, stride=stride, padding="SAME", feature_group_count=groups
        )
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_valid_is_zero_padding_and_output_padding_adds_to_same(key):
    params = F.conv_transpose2d_init(key, 2, 3, 3)
    x = jax.random.normal(key, (1, 4, 5, 2))
    valid = F.conv_transpose2d(params, x, stride=2, padding="valid")
    np.testing.assert_array_equal(valid, F.conv_transpose2d(params, x, stride=2, padding=0))
    same = F.conv_transpose2d(params, x, stride=2, padding="SAME")
    wider = F.conv_transpose2d(params, x, stride=2, padding="SAME", output_padding=(1, 0))
    assert same.shape == (1, 8, 10, 3) and wider.shape == (1, 9, 10, 3)
    np.testing.assert_allclose(wider[:, :8], same, rtol=1e-6, atol=1e-6)


def test_check_grads_grouped_same():
    x = rand((1, 4, 4), 1)
    with jax.enable_x64(True):
        p = {"kernel": rand((3, 4, 1), 2), "bias": rand((2,), 3)}
        fn = lambda p, x: F.conv_transpose1d(p, x, stride=2, padding="SAME", feature_group_count=2)
        check_grads(jax.jit(fn), (p, x), order=1)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_jit_vmap_grad_float32_bfloat16(key):
    params = {"kernel": jax.random.normal(key, (2, 2, 4, 3)), "bias": jnp.ones(6)}
    fn = lambda p, x: F.conv_transpose2d(p, x, stride=2, padding="SAME", feature_group_count=2)
    assert_transforms(fn, params, jax.random.normal(key, (1, 3, 3, 4)))


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_init_groups(key):
    params = F.conv_transpose3d_init(key, 4, 6, (1, 2, 3), feature_group_count=2)
    assert params["kernel"].shape == (1, 2, 3, 4, 3) and params["bias"].shape == (6,)
    # One group keeps the layout (and the values) of the ungrouped initialiser.
    one = F.conv_transpose2d_init(key, 4, 6, 3, feature_group_count=1)
    np.testing.assert_array_equal(one["kernel"], F.conv_transpose2d_init(key, 4, 6, 3)["kernel"])
    assert one["kernel"].shape == (3, 3, 4, 6)


def test_errors_name_op_argument_and_value(key):
    with pytest.raises(ValueError, match=r"conv_transpose2d_init: `feature_group_count`=4 must"):
        F.conv_transpose2d_init(key, 6, 4 * 3, 3, feature_group_count=4)
    with pytest.raises(ValueError, match=r"conv_transpose1d_init: `feature_group_count` must be"):
        F.conv_transpose1d_init(key, 2, 2, 3, feature_group_count=0)
    params = F.conv_transpose1d_init(key, 4, 2, 3, feature_group_count=2)  # kernel (3, 4, 1)
    with pytest.raises(ValueError, match=r"conv_transpose1d: `feature_group_count`=3 must"):
        F.conv_transpose1d(params, jnp.ones((1, 5, 4)), feature_group_count=3)
    with pytest.raises(ValueError, match=r"conv_transpose1d: `feature_group_count` must be a"):
        F.conv_transpose1d(params, jnp.ones((1, 5, 4)), feature_group_count=1.5)
    with pytest.raises(ValueError, match=r"conv_transpose1d: `padding` must be 'SAME', 'VALID'"):
        F.conv_transpose1d(params, jnp.ones((1, 5, 4)), padding="FULL")
    with pytest.raises(AssertionError, match=r"conv_transpose1d: argument `x` has shape"):
        F.conv_transpose1d(params, jnp.ones((1, 5, 2)), feature_group_count=2)


def test_params_keys_are_checked_as_in_conv(key):
    p = F.conv_transpose2d_init(key, 8, 3, 3)
    x = jnp.ones((1, 7, 7, 8))
    with pytest.raises(
        ValueError,
        match=r"conv_transpose2d: `params` has an unexpected key 'bais' \(did you mean 'bias'\?\)",
    ):
        F.conv_transpose2d({"kernel": p["kernel"], "bais": p["bias"]}, x)
    with pytest.raises(KeyError, match=r"conv_transpose2d: `params` has no key 'kernel'"):
        F.conv_transpose2d({"bias": p["bias"]}, x)
    with pytest.raises(
        ValueError, match=r"conv_transpose2d: `params` has an unexpected key 'bais'"
    ):
        jax.jit(F.conv_transpose2d)({"kernel": p["kernel"], "bais": p["bias"]}, x)
    fn = jax.jit(F.conv_transpose2d, static_argnames="stride")
    np.testing.assert_allclose(
        fn(p, x, stride=2), F.conv_transpose2d(p, x, stride=2), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 3, 3), r"conv_transpose2d_init: `in_channels` must be a positive int, got 0"),
        ((8, -3, 3), r"conv_transpose2d_init: `out_channels` must be a positive int, got -3"),
        ((8.0, 3, 3), r"conv_transpose2d_init: `in_channels` must be a positive int, got 8.0"),
    ],
)
def test_init_checks_channel_counts(key, args, match):
    with pytest.raises(ValueError, match=match):
        F.conv_transpose2d_init(key, *args)
    with pytest.raises(TypeError, match=r"conv_transpose2d_init: `key` must be a PRNG key"):
        F.conv_transpose2d_init(0, 8, 3, 3)
    assert F.conv_transpose2d_init(key, np.int64(8), 3, 3)["kernel"].shape == (3, 3, 8, 3)
