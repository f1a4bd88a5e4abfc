"""Explicit pooling padding (PyTorch's ints, Flax's pairs) and ``ceil_mode`` against PyTorch."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import _pool_padding

from ._compare import assert_matches_torch
from ._torch_ref import torch
from ._transforms import assert_transforms

TF = torch.nn.functional
KINDS = ["max", "avg_exclude_pad", "avg_include_pad"]
# float64 against torch (one compile per case: ~100 cases); float32 and the narrow floats
# are compared below (the ResNet stem with torch, formulations, bfloat16/float16)
DTYPES = (np.float64,)

# (spatial, window, stride, padding, ceil_mode): symmetric padding, which PyTorch's own
# `padding=` argument takes, so torch's pooling is the referee as a user would call it
NATIVE = [
    ((8,), 3, 2, 1, False),  # even size
    ((7,), 3, 2, 1, True),  # odd size
    ((6,), 4, 3, 2, True),
    ((2,), 3, 3, 0, True),  # no full window: ceil_mode keeps one, clipped
    ((5,), 2, 2, 1, True),  # ceil's 4th window would start in the padding: 3 windows
    ((8, 8), 3, 2, 1, False),  # ResNet's stem, nn.MaxPool2d(3, 2, padding=1)
    ((8, 8), 3, 2, 1, True),
    ((7, 6), (3, 2), (2, 1), (1, 0), True),  # one int per axis
    ((5, 5), 2, 2, 0, True),  # "VALID" with ceil_mode: non-overlapping (reshape on CPU)
    ((6, 7), 2, 2, 1, True),  # padded, non-overlapping
    ((5, 4, 6), 3, 2, 1, True),
    ((4, 5, 3), (2, 3, 2), (2, 2, 1), (1, 1, 0), False),
]
# The same with (lo, hi) pairs, uneven too: the reference pads with torch's F.pad first
# (so no case has a ceil_mode window starting in the high padding, which nnjax drops as
# PyTorch does, and the padded reference would keep)
PAIRS = [
    ((7,), 3, 2, ((1, 0),), True),
    ((8,), 3, 2, ((1, 1),), True),
    ((6, 5), 3, 2, ((0, 1), (1, 1)), False),
    ((5, 6), 2, 2, ((1, 0), (1, 0)), True),
    ((4, 5, 4), (2, 3, 2), 2, ((1, 0), (1, 1), (1, 0)), True),
]


def _distinct(shape, seed):
    """Inputs without ties, so max-pool gradients are unambiguous."""
    values = np.random.default_rng(seed).permutation(math.prod(shape)).astype(np.float64)
    return values.reshape(shape) / 10.0 - 5.0  # negative values too: padding must not win


def _ours(kind, nd, window, stride, padding, ceil_mode, **kwargs):
    if kind == "max":
        op = getattr(F, f"max_pool{nd}d")
        return lambda x: op(x, window, stride, padding, ceil_mode=ceil_mode, **kwargs)
    op, include = getattr(F, f"avg_pool{nd}d"), kind == "avg_include_pad"
    return lambda x: op(
        x, window, stride, padding, ceil_mode=ceil_mode, count_include_pad=include, **kwargs
    )


def _torch_native(kind, window, stride, padding, ceil_mode):
    """Channels-last torch tensor in and out; torch's own padding and ceil_mode."""

    def fn(x):
        nd = x.ndim - 2
        xc = x.movedim(-1, 1)
        if kind == "max":
            y = getattr(TF, f"max_pool{nd}d")(xc, window, stride, padding, ceil_mode=ceil_mode)
        else:
            include = kind == "avg_include_pad"
            pool = getattr(TF, f"avg_pool{nd}d")
            y = pool(xc, window, stride, padding, ceil_mode=ceil_mode, count_include_pad=include)
        return y.movedim(1, -1)

    return fn


def _torch_padded(kind, window, stride, pairs, ceil_mode):
    """Uneven padding written out with F.pad, then torch pooling without padding.

    torch's clipped ceil_mode windows divide by their in-bounds size, which here
    counts the padding (``count_include_pad=True``); the ratio to the same pool of
    padded ones divides by the input elements alone.
    """

    def fn(x):
        nd = x.ndim - 2
        xc = x.movedim(-1, 1)
        flat = [p for lo_hi in reversed(pairs) for p in lo_hi]  # torch pads the last axis first
        pool = getattr(TF, f"{kind[:3]}_pool{nd}d")
        if kind == "max":
            y = pool(TF.pad(xc, flat, value=-math.inf), window, stride, ceil_mode=ceil_mode)
        else:
            y = pool(TF.pad(xc, flat), window, stride, ceil_mode=ceil_mode)
            if kind == "avg_exclude_pad":
                ones = TF.pad(torch.ones_like(xc), flat)
                y = y / pool(ones, window, stride, ceil_mode=ceil_mode)
        return y.movedim(1, -1)

    return fn


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("spatial", "window", "stride", "padding", "ceil_mode"), NATIVE)
def test_int_padding_and_ceil_mode_match_torch(kind, spatial, window, stride, padding, ceil_mode):
    x = _distinct((2, *spatial, 3), len(spatial))
    fn = _ours(kind, len(spatial), window, stride, padding, ceil_mode)
    torch_fn = _torch_native(kind, window, stride, padding, ceil_mode)
    assert_matches_torch(fn, torch_fn, (x,), dtypes=DTYPES)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("spatial", "window", "stride", "pairs", "ceil_mode"), PAIRS)
def test_pair_padding_matches_torch(kind, spatial, window, stride, pairs, ceil_mode):
    x = _distinct((2, *spatial, 2), 5)
    nd = len(spatial)
    window, stride = (_pool_padding_tuple(v, nd) for v in (window, stride))
    fn = _ours(kind, nd, window, stride, pairs, ceil_mode)
    torch_fn = _torch_padded(kind, window, stride, pairs, ceil_mode)
    assert_matches_torch(fn, torch_fn, (x,), dtypes=DTYPES)


def _pool_padding_tuple(value, nd):
    return (value,) * nd if isinstance(value, int) else tuple(value)


def test_resnet_stem_on_an_even_image():
    """The audit's port: nn.MaxPool2d(3, 2, padding=1) on 8x8 ("SAME" was 1.31 off)."""
    x = _distinct((2, 8, 8, 3), 0).astype(np.float32)
    want = TF.max_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 3, 2, padding=1)
    y = F.max_pool2d(x, 3, 2, padding=1)
    np.testing.assert_allclose(y, want.permute(0, 2, 3, 1).numpy(), rtol=0, atol=0)
    assert F.max_pool2d(x, 3, 2, padding=1).shape == F.max_pool2d(x, 3, 2, "SAME").shape
    assert not np.array_equal(y, F.max_pool2d(x, 3, 2, "SAME"))  # TF pads (0, 1) here


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize(
    ("spatial", "window", "padding"),
    [((5, 5), 2, 0), ((6, 7), 2, 1), ((5, 6), 2, ((1, 0), (0, 1))), ((7,), 3, ((1, 1),))],
)
@pytest.mark.parametrize("kind", KINDS)
def test_formulations_agree_exactly_with_padding_and_ceil_mode(kind, spatial, window, padding):
    nd = len(spatial)
    x = jnp.asarray(_distinct((2, *spatial, 3), 9), jnp.float32)
    results = []
    for formulation in ("reduce_window", "reshape"):
        fn = _ours(kind, nd, window, None, padding, True, formulation=formulation)
        y, vjp = jax.vjp(fn, x)
        results.append((y, vjp(jnp.arange(y.size, dtype=y.dtype).reshape(y.shape))[0]))
    (y_rw, g_rw), (y_rs, g_rs) = results
    np.testing.assert_allclose(y_rs, y_rw, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g_rs, g_rw, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("formulation", ["reduce_window", "reshape"])
def test_max_pool_padding_never_wins_nor_takes_gradient(formulation):
    """All-negative input: no output is the padding's -inf; each window's 1 reaches x."""
    x = jnp.asarray(-100.0 - _distinct((1, 5, 6, 2), 4) ** 2, jnp.float32)
    fn = lambda x: F.max_pool2d(x, 2, 2, 1, ceil_mode=True, formulation=formulation)
    y, vjp = jax.vjp(fn, x)
    assert y.shape == (1, 3, 4, 2) and bool(jnp.all(jnp.isfinite(y)))
    (g,) = vjp(jnp.ones_like(y))
    assert float(g.sum()) == y.size  # every window's gradient lands on an input element


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_narrow_floats_pad_like_float32(dtype):
    x = _distinct((2, 7, 6, 3), 2).astype(np.float32)
    narrow = jnp.asarray(x, dtype)
    wide = narrow.astype(jnp.float32)
    for fn in (
        lambda x: F.max_pool2d(x, 3, 2, ((1, 0), (1, 1)), ceil_mode=True),
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True),
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
    ):
        y = fn(narrow)
        assert y.dtype == dtype
        np.testing.assert_allclose(
            np.asarray(y, np.float32), np.asarray(fn(wide).astype(dtype), np.float32), rtol=1e-2
        )


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x: F.avg_pool2d(x, 3, 2, ((0, 1), (1, 1)), ceil_mode=True),
    ],
)
def test_jit_vmap_grad_float32_bfloat16_without_recompiling(fn):
    assert_transforms(fn, _distinct((2, 6, 5, 2), 1).astype(np.float32))


def test_static_padding_under_jit_and_saved_lists():
    """A tuple of pairs is hashable (a static argument); JSON's lists are taken too."""
    x = jnp.asarray(_distinct((1, 6, 6, 1), 3), jnp.float32)
    pool = jax.jit(F.avg_pool2d, static_argnames=("window", "stride", "padding", "ceil_mode"))
    y = pool(x, window=3, stride=2, padding=((1, 1), (0, 1)), ceil_mode=True)
    want = F.avg_pool2d(x, 3, 2, [[1, 1], [0, 1]], ceil_mode=True)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    assert _pool_padding.pool_padding("op", 2, [1, [0, 1]], (3, 3)) == ((1, 1), (0, 1))


def test_zero_padding_is_valid_and_same_ignores_ceil_mode():
    x = jnp.asarray(_distinct((1, 7, 5, 2), 6), jnp.float32)
    np.testing.assert_array_equal(F.max_pool2d(x, 2, 1, 0), F.max_pool2d(x, 2, 1, "VALID"))
    np.testing.assert_array_equal(
        F.avg_pool2d(x, 3, 2, ((0, 0), (0, 0))), F.avg_pool2d(x, 3, 2, "VALID")
    )
    for op in (F.max_pool2d, F.avg_pool2d):
        np.testing.assert_array_equal(op(x, 3, 2, "SAME", ceil_mode=True), op(x, 3, 2, "SAME"))


BAD_PADDING = [
    (2, -1, r"`padding` must be 'SAME', 'VALID', a non-negative int, a pair of them or "),
    (2, (1, 1, 1), r"`padding` must be .*, got \(1, 1, 1\)"),
    (2, ((1, 1),), r"`padding` must be .*\(\(top, bottom\), \(left, right\)\)"),
    (2, ((1, -1), (0, 0)), r"`padding` must be .*, got \(\(1, -1\), \(0, 0\)\)"),
    (2, ((1, 1, 1), (0, 0)), r"`padding` must be .*of non-negative ints"),
    (2, True, r"`padding` must be .*, got True"),
    (2, 1.0, r"`padding` must be .*, got 1.0"),
    (2, "FULL", r"`padding` must be 'SAME', 'VALID', .*, got 'FULL'"),
    (2, 2, r"`padding`=2 pads axis 0 by \(2, 2\), more than half its window 3 \(at most 1"),
    (2, ((0, 1), (0, 2)), r"`padding`=\(\(0, 1\), \(0, 2\)\) pads axis 1 by \(0, 2\), more"),
    (1, (1, 2), r"`padding` must be .*, got \(1, 2\); for 1 before and 2 after .*\(\(1, 2\),\)"),
    (3, (1, 1), r"`padding` must be .*a triple of them"),
]


@pytest.mark.parametrize(("nd", "padding", "match"), BAD_PADDING)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_bad_padding_names_op_argument_and_value(kind, nd, padding, match):
    name = f"{kind}_pool{nd}d"
    with pytest.raises(ValueError, match=f"{name}: {match}"):
        getattr(F, name)(jnp.ones((1, *(6,) * nd, 1)), 3, 1, padding)


@pytest.mark.parametrize("op", [F.max_pool1d, F.avg_pool1d])
def test_bad_ceil_mode_and_windows_that_do_not_fit(op):
    name = op.__name__
    x = jnp.ones((1, 2, 1))
    with pytest.raises(TypeError, match=rf"{name}: `ceil_mode` must be a Python bool .*'yes'"):
        op(x, 2, ceil_mode="yes")
    fit = rf"{name}: argument `x` has shape \(1, 2, 1\), whose spatial axes \(2,\) with padding"
    with pytest.raises(ValueError, match=fit + r" \(\(1, 1\),\) are smaller than the window \(5,"):
        op(x, 5, 1, 1)
    with pytest.raises(ValueError, match=fit + r" 'VALID' .*window \(3,\) \(with ceil_mode\)"):
        op(x, 3, 1, ceil_mode=True)  # ceil((2 - 3) / 1) + 1 = 0 windows
    assert op(x, 3, 3, ceil_mode=True).shape == (1, 1, 1)  # one clipped window, as torch
