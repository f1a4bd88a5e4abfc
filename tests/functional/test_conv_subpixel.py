"""Transposed convolutions (and strided convolutions' input gradients) as stride-1 ones.

``_conv_subpixel.conv`` against ``lax``'s stride-dilated convolution (the reference it
replaces on the CPU), in both its modes, values and gradients in float64; the phase
plan; the rule; and what programs keep: no stride-dilated convolution on the CPU.
"""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import _conv_canonical, _conv_subpixel, _eager, conv_transpose
from nnjax.functional import _conv_compiler as compiler
from nnjax.functional import _conv_formulations as forms
from nnjax.functional._conv_transpose_pads import check_output_padding, transpose_pads
from nnjax.functional._forward_only import forward_only

from ._backend import ON_CPU, requires_library_programs
from ._transforms import assert_member_grads


def rand(shape, seed: int) -> np.ndarray:
    """Standard-normal float64 test data (no PyTorch: the reference here is ``lax``)."""
    return np.random.default_rng(seed).standard_normal(shape)


def _cases():
    """(nd, kernel, stride, dilation, size, padding, output_padding, groups): a fixed sample."""
    grid = itertools.product((1, 2, 3), (1, 2, 3, 4, 5), (1, 2, 3), (1, 2), (1, 4, 5),
                             (0, 1, 2, "SAME"), (0, 1, 2), (1, 2))  # fmt: skip
    candidates = [
        c for c in grid
        if c[6] < max(c[2], c[3]) and not (c[0] == 3 and (c[1] > 3 or c[4] > 4 or c[3] > 1))
    ]  # fmt: skip
    # A random order, then the first 16 that ``lax`` accepts (asking it of every
    # candidate took 10 s of each test process's collection).
    order = np.random.default_rng(0).permutation(len(candidates))
    valid = (candidates[i] for i in order if _output(candidates[i]) is not None)
    return sorted(itertools.islice(valid, 16), key=candidates.index)


def _geometry(case):
    nd, k, s, d, _, padding, out_pad, _ = case
    extra, strides, dilation = check_output_padding("t", nd, out_pad, s, d)
    return strides, transpose_pads("t", nd, (k,) * nd, padding, strides, dilation, extra), dilation


def _output(case):
    """The reference's output, or None where ``lax`` rejects the padding or it is empty."""
    nd, k, _, _, size, _, _, groups = case
    strides, pads, dilation = _geometry(case)
    # shapes only: arrays cost a compilation each (of zeros) in every collection
    x = jax.ShapeDtypeStruct((1, *(size,) * nd, 4), jnp.float32)
    kernel = jax.ShapeDtypeStruct((*(k,) * nd, 4, 6 // groups), jnp.float32)
    try:
        shape = jax.eval_shape(
            lambda x, k: conv_transpose._dilated(
                x, k, strides=strides, pads=pads, dilation=dilation, groups=groups
            ), x, kernel,
        ).shape  # fmt: skip
    except ValueError:
        return None
    return shape if min(shape) > 0 else None


def _both(case, fn):
    """``fn`` under ``lax``'s dilated convolution and the sub-pixel one: ``(expected, got)``."""
    nd, k, _, _, size, _, _, groups = case
    strides, pads, dilation = _geometry(case)
    x = jnp.asarray(rand((2, *(size,) * nd, 4), 1))
    kernel = jnp.asarray(rand((*(k,) * nd, 4, 6 // groups), 2))
    kw = {"strides": strides, "pads": pads, "dilation": dilation, "groups": groups}
    return tuple(
        fn(lambda x, k, impl=impl: impl(x, k, **kw), x, kernel)
        for impl in (conv_transpose._dilated, conv_transpose._subpixel)
    )


def _value_and_grads(conv, x, kernel):
    y, pullback = jax.vjp(conv, x, kernel)
    return (y, *pullback(jnp.asarray(rand(y.shape, 3), y.dtype)))


def _jitted_value_and_grads(conv, x, kernel):
    """:func:`_value_and_grads` as one program (op by op it took 6-8x the time)."""
    return jax.jit(_value_and_grads, static_argnums=0)(conv, x, kernel)


SEPARATIONS = {
    "shared": lambda kernel_shape, plans: (False,) * len(plans),
    "per_phase": lambda kernel_shape, plans: (True,) * len(plans),
    "first_axis": lambda kernel_shape, plans: (True,) + (False,) * (len(plans) - 1),
}


# half the sample in the default run, all of it with `-m slow` (17 s of the default run)
@pytest.mark.parametrize("separation", ["shared", "per_phase", "first_axis"])
@pytest.mark.parametrize(
    "case",
    [c if i % 2 == 0 else pytest.param(c, marks=pytest.mark.slow) for i, c in enumerate(_cases())],
)
def test_matches_the_dilated_convolution_float64(case, separation, monkeypatch):
    """Values and both gradients: one convolution for all phases, one per phase, or one
    per phase of the first axis (the others shared, as for a kernel that covers its
    stride on the other axes)."""
    monkeypatch.setattr(_conv_subpixel, "separate_axes", SEPARATIONS[separation])
    with jax.enable_x64(True):
        expected, got = _both(case, _jitted_value_and_grads)
    for a, b in zip(expected, got, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)


def test_plan_of_a_four_tap_stride_two_axis():
    """PyTorch's ``padding=1``: 7 -> 14; two taps per phase once the grid shifts by one."""
    plan = _conv_subpixel.plan_axis(7, 4, 2, 1, (2, 2))
    assert (plan.taps, plan.shift, plan.length, plan.live) == (2, 1, 14, (0, 1))
    assert sorted(zip(plan.phase, plan.index)) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_plan_of_a_one_tap_stride_two_axis_leaves_a_dead_phase():
    plan = _conv_subpixel.plan_axis(5, 1, 2, 1, (0, 1))  # output_padding 1: 5 -> 10
    assert (plan.taps, plan.length, len(plan.live)) == (1, 10, 1)
    params = {"kernel": jnp.asarray(rand((1, 1, 3, 2), 1))}
    y = F.conv_transpose2d(params, jnp.asarray(rand((2, 5, 5, 3), 2)), stride=2, output_padding=1)
    dead = 1 - plan.live[0]
    assert y.shape == (2, 10, 10, 2) and not np.any(np.asarray(y)[:, dead::2])
    assert np.all(np.asarray(y)[:, plan.live[0] :: 2, plan.live[0] :: 2] != 0)


def test_rule_separates_the_axes_whose_shared_kernel_holds_zeros():
    three = _conv_subpixel.plan_axis(8, 3, 2, 1, (1, 2))  # 2 positions x 2 phases, 3 taps
    four = _conv_subpixel.plan_axis(8, 4, 2, 1, (2, 2))  # 2 x 2 for 4 taps: no zeros
    plain = _conv_subpixel.plan_axis(8, 3, 1, 2, (4, 4))  # stride 1: no phases
    wide = _conv_subpixel.SEPARATE_MIN_CHANNELS
    rule = _conv_subpixel.separate_axes
    assert rule((3, 3, 3, 8, wide), [three] * 3) == (True, True, True)
    assert rule((3, 3, 3, 8, wide - 1), [three] * 3) == (False, False, False)
    assert rule((4, 3, 8, wide), [four, three]) == (False, True)
    assert rule((4, 3, 8, wide), [four, plain]) == (False, False)


def _dilated_convolutions(fn, *args) -> list[str]:
    """The stride dilations (``lhs_dilation``) other than 1 in ``fn``'s jaxpr."""
    text = str(jax.make_jaxpr(fn)(*args))
    found = re.findall(r"lhs_dilation=\(([0-9, ]*)\)", text)
    assert found, "no convolution in the jaxpr"
    return [d for d in found if set(d.replace(",", " ").split()) != {"1"}]


@pytest.mark.skipif(not ON_CPU, reason="the sub-pixel formulation is the CPU's")
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_no_stride_dilated_convolution_on_the_cpu(nd):
    """Forward and gradient of a transposed and of a strided convolution, as ``fit``
    traces them. Fails on the code before: ``lax``'s dilated input in both."""
    x = jnp.asarray(rand((2, *(5,) * nd, 3), 1))
    transposed = {"kernel": jnp.asarray(rand((*(3,) * nd, 3, 4), 2))}
    strided = {"kernel": jnp.asarray(rand((*(3,) * nd, 4, 4), 3))}
    op_t = getattr(F, f"conv_transpose{nd}d")

    def loss(pt, p, x):
        up = op_t(pt, x, stride=2, padding=1, output_padding=1)
        down = forms.xla_canonical(up, p["kernel"], (2,) * nd, [(1, 1)] * nd, (1,) * nd, 1)
        return jnp.sum(down**2)

    with compiler.library_convolutions():
        assert (
            _dilated_convolutions(jax.grad(loss, argnums=(0, 1, 2)), transposed, strided, x) == []
        )


@requires_library_programs
def test_strided_input_gradient_matches_jax_in_a_library_program():
    """``_conv_canonical``'s strided input gradient (sub-pixel) equals JAX's own VJP."""
    x, kernel = jnp.asarray(rand((2, 9, 8, 3), 1)), jnp.asarray(rand((3, 2, 3, 5), 2))
    args = ((2, 3), ((1, 1), (0, 2)), (1, 2))
    with jax.enable_x64(True):
        x, kernel = x.astype(jnp.float64), kernel.astype(jnp.float64)
        y, pullback = jax.vjp(lambda x, k: _conv_canonical.conv(x, k, *args), x, kernel)
        dy = jnp.asarray(rand(y.shape, 3), jnp.float64)
        reference = lambda x, k: jax.lax.conv_general_dilated(
            x, k, args[0], args[1], rhs_dilation=args[2], dimension_numbers=("NHWC", "HWIO", "NHWC")
        )  # fmt: skip
        _, ref_pullback = jax.vjp(reference, x, kernel)
        for a, b in zip(pullback(dy), ref_pullback(dy), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@requires_library_programs
@pytest.mark.slow
def test_in_a_library_program_under_vmap_traces_once(key):
    """A sweep's members: values and gradients equal per-member calls; one trace."""
    members = jax.vmap(lambda k: F.conv_transpose2d_init(k, 3, 32, 3))(jax.random.split(key, 2))
    x = jax.random.normal(key, (2, 5, 4, 3))
    loss = lambda q, x: 0.5 * jnp.sum(F.conv_transpose2d(q, x, stride=2, padding=1) ** 2)

    def reference(q, x):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(conv_transpose, "_subpixel", conv_transpose._dilated)
            return loss(q, x)

    assert_member_grads(loss, reference, members, x, jit=compiler.jit)


def test_forward_only_and_bfloat16_match_the_dilated_convolution():
    case = (3, 3, 2, 1, 4, 1, 1, 1)  # 3-D: depth-stacked planes forward only on the CPU
    call = lambda conv, x, k: jax.jit(conv)(x, k)  # traced (and so chosen) inside the block
    expected, got = _both(case, call)
    with forward_only():
        _, forward = _both(case, call)
    np.testing.assert_allclose(forward, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    as_bf16 = lambda conv, x, k: call(conv, x.astype(jnp.bfloat16), k.astype(jnp.bfloat16))
    _, low = _both(case, as_bf16)
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(low.astype(np.float32), expected, rtol=0.05, atol=0.1)


def test_symbolic_batch_exports_with_the_dilated_convolution():
    """A symbolic batch keeps ``lax``'s formulation (an exported program may run anywhere)."""
    params = {"kernel": jnp.asarray(rand((3, 3, 2, 4), 1))}
    fn = jax.jit(lambda x: F.conv_transpose2d(params, x, stride=2, padding=1, output_padding=1))
    (batch,) = jax.export.symbolic_shape("b")
    exported = jax.export.export(fn)(jax.ShapeDtypeStruct((batch, 5, 5, 2), jnp.float32))
    x = jnp.asarray(rand((3, 5, 5, 2), 2))
    np.testing.assert_allclose(exported.call(x), fn(x), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not ON_CPU, reason="the sub-pixel formulation is the CPU's")
def test_an_eager_call_is_one_program_per_geometry_and_context():
    """Eagerly, one cached program (not its ops one by one), keyed by ``"auto"``'s context."""
    _eager._program.cache_clear()
    params = {"kernel": jnp.asarray(rand((3, 3, 2, 4), 1), jnp.float32)}
    x = jnp.asarray(rand((2, 5, 6, 2), 2), jnp.float32)
    call = lambda x: F.conv_transpose2d(params, x, stride=2, padding=1, output_padding=1)
    first, again = call(x), call(x + 1.0)
    assert _eager._program.cache_info()[:2] == (1, 1)  # hits, misses
    with forward_only():
        forward = call(x)
    assert _eager._program.cache_info().misses == 2  # another context
    jitted = jax.jit(call)
    for got, arg in ((first, x), (again, x + 1.0), (forward, x)):
        np.testing.assert_allclose(got, jitted(arg), rtol=1e-5, atol=1e-5)
