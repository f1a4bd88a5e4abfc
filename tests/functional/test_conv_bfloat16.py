"""``_conv_bfloat16``: im2col with bfloat16 operands, where AMX makes it faster.

The convolution is checked against an independent reference: XLA's float32
convolution at ``precision="highest"`` of the operands rounded to bfloat16 (the same
products, float32 sums), values and both gradients (the cotangent rounded to bfloat16
too, as the kernels take it), for strides, dilations, uneven pads, 1x1 kernels (either
kernel-gradient branch), 1-D and 3-D, float32 and bfloat16 inputs, in plain ``jax.jit``
and in a library program. Where ``"auto"`` picks it is checked with the hardware faked
(``_hardware.amx_bfloat16``): only in library programs, only for bfloat16 operands
(a bfloat16 input, or ``fit``'s ``precision="bfloat16"``), only where :func:`faster`.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import _hardware
from nnjax.functional import _bfloat16_dot, _conv_formulations
from nnjax.functional import _conv_bfloat16 as cb
from nnjax.functional import _conv_compiler as compiler
from nnjax.nn import CNN
from nnjax.train.step import make_train_step, split_model

LAYOUT = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}

# (input shape, kernel shape, strides, pads, dilation)
CASES = {
    "3x3": ((2, 7, 6, 4), (3, 3, 4, 5), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    "strided, dilated, uneven": ((2, 9, 8, 3), (3, 2, 3, 6), (2, 1), ((2, 0), (1, 1)), (1, 2)),
    "1x1 widening (patches.T)": ((3, 5, 5, 2), (1, 1, 2, 8), (1, 1), ((0, 0),) * 2, (1, 1)),
    "1x1 narrowing (dy.T)": ((3, 5, 5, 8), (1, 1, 8, 2), (1, 1), ((0, 0),) * 2, (1, 1)),
    "1-D": ((2, 11, 3), (3, 3, 4), (2,), ((2, 1),), (1,)),
    "3-D": ((1, 4, 5, 4, 2), (2, 3, 2, 2, 3), (1, 1, 1), ((0, 1), (1, 1), (1, 0)), (1, 1, 1)),
}


def _rand(shape, seed, dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _rounded(a):
    return a.astype(jnp.bfloat16).astype(jnp.float32)


def _exact(x, kernel, strides, pads, dilation):
    """XLA's float32 convolution with exact float32 products and sums."""
    nd = kernel.ndim - 2
    return jax.lax.conv_general_dilated(
        x, kernel, strides, pads, rhs_dilation=dilation, dimension_numbers=LAYOUT[nd],
        precision="highest",
    )  # fmt: skip


def _reference(x, kernel, *static):
    """:func:`_exact` of the operands rounded to bfloat16."""
    return _exact(_rounded(x), _rounded(kernel), *static)


def _operands(case, dtype=np.float32):
    x_shape, kernel_shape, *static = CASES[case]
    return _rand(x_shape, 1, dtype), _rand(kernel_shape, 2, dtype), static


@pytest.mark.parametrize("library", [False, True], ids=["jit", "library"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_values_and_gradients_equal_the_rounded_reference(case, library):
    x, kernel, static = _operands(case)
    want = _reference(x, kernel, *static)
    cotangent = _rand(want.shape, 3)
    _, ref_vjp = jax.vjp(lambda a, b: _exact(a, b, *static), _rounded(x), _rounded(kernel))
    wants = ref_vjp(_rounded(cotangent))  # the kernels take the cotangent in bfloat16

    def value_and_grads(x, kernel):
        y, vjp = jax.vjp(lambda a, b: cb.conv(a, b, *static), x, kernel)
        return y, vjp(cotangent)

    jit = compiler.jit if library else jax.jit
    got, grads = jit(value_and_grads)(x, kernel)
    assert got.dtype == jnp.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for g, w, like in zip(grads, wants, (x, kernel)):
        assert g.shape == like.shape and g.dtype == like.dtype
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_bfloat16_operands_give_bfloat16_gradients_rounded_once():
    x, kernel, static = _operands("3x3", jnp.bfloat16)
    cotangent = _rand(_reference(x, kernel, *static).shape, 3)
    y, vjp = jax.vjp(lambda a, b: cb.conv(a, b, *static), x, kernel)
    dx, dk = vjp(cotangent)
    assert y.dtype == jnp.float32 and dx.dtype == dk.dtype == jnp.bfloat16
    _, ref_vjp = jax.vjp(lambda a, b: _exact(a, b, *static), _rounded(x), _rounded(kernel))
    for got, want in zip((dx, dk), ref_vjp(_rounded(cotangent))):
        np.testing.assert_array_equal(got, want.astype(jnp.bfloat16))


def test_rounding_really_happens():
    """Not a float32 convolution: operands off the bfloat16 grid change the result."""
    x, kernel, static = _operands("3x3")
    exact = _exact(x, kernel, *static)
    assert not np.allclose(cb.conv(x, kernel, *static), exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("x_shape", "kernel_shape", "out", "expected"),
    [
        ((8, 7, 7, 512), (3, 3, 512, 512), (7, 7), True),  # intensity 460: always
        ((128, 14, 14, 256), (3, 3, 256, 256), (14, 14), True),  # 230, 58 M elements
        ((8, 28, 28, 128), (3, 3, 128, 128), (28, 28), True),  # 115, 7.2 M
        ((32, 28, 28, 128), (3, 3, 128, 128), (28, 28), False),  # 115, 29 M
        ((32, 14, 14, 32), (3, 3, 32, 64), (14, 14), True),  # 52, K >= N, 1.8 M
        ((128, 14, 14, 32), (3, 3, 32, 64), (14, 14), False),  # 52, 7.2 M
        ((8, 56, 56, 64), (1, 1, 64, 256), (56, 56), False),  # 51, K < N
        ((8, 28, 28, 1), (3, 3, 1, 32), (28, 28), False),  # K < N (a first layer)
    ],
)
def test_faster_follows_the_measured_table(x_shape, kernel_shape, out, expected):
    assert cb.faster(x_shape, kernel_shape, out) is expected


@pytest.fixture
def amx(monkeypatch):
    """Fakes a CPU with (``amx(True)``: native bfloat16 too) or without AMX bfloat16 tiles."""

    def fake(flag: bool, native: bool | None = None) -> None:
        native = flag if native is None else native
        monkeypatch.setattr(_hardware, "amx_bfloat16", lambda: flag)
        monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: native)

    return fake


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU formulation")
def test_operands_wanted_only_for_bfloat16_operands_on_amx(amx):
    amx(True)
    assert cb.operands_wanted(jnp.bfloat16)
    assert not cb.operands_wanted(jnp.float32) and not cb.operands_wanted(jnp.float16)
    with _bfloat16_dot.bfloat16_operands():
        assert cb.operands_wanted(jnp.float32)
    amx(False, native=True)  # AVX512-BF16 only
    assert not cb.operands_wanted(jnp.bfloat16)
    with _bfloat16_dot.bfloat16_operands():
        assert not cb.operands_wanted(jnp.float32)
    amx(True, native=False)  # inconsistent, but bfloat16 faked as emulated wins
    assert not cb.operands_wanted(jnp.bfloat16)


def _picked(x, kernel, *, library, bf16, groups=1, formulation="auto"):
    with compiler.library_convolutions(library):
        return _conv_formulations.resolve(
            formulation, x, kernel, x.shape[1:3], groups, bfloat16_operands=bf16
        )


def test_resolve_picks_it_only_in_library_programs_for_bfloat16_operands():
    x, kernel = jnp.zeros((8, 7, 7, 512)), jnp.zeros((3, 3, 512, 512))
    assert _picked(x, kernel, library=True, bf16=True) == "patches_bfloat16"
    assert _picked(x, kernel, library=False, bf16=True) != "patches_bfloat16"
    assert _picked(x, kernel, library=True, bf16=False) != "patches_bfloat16"
    assert _picked(x, kernel, library=True, bf16=True, formulation="xla") == "xla"
    grouped = jnp.zeros((3, 3, 256, 512))
    assert _picked(x, grouped, library=True, bf16=True, groups=2) != "patches_bfloat16"
    slower = jnp.zeros((128, 14, 14, 32)), jnp.zeros((3, 3, 32, 64))
    assert _picked(*slower, library=True, bf16=True) != "patches_bfloat16"


def _uses_uint16_patches(fn, *args) -> bool:
    """Whether the traced program builds a 3x3-over-32-channels patch matrix as uint16."""
    fresh = lambda *a: fn(*a)  # make_jaxpr caches traces per function, not per context
    with compiler.library_convolutions():
        return re.search(r"u16\[[\d,]*,288\]", str(jax.make_jaxpr(fresh)(*args))) is not None


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU formulation")
def test_conv2d_takes_it_for_bfloat16_inputs_and_under_precision(amx):
    params = F.conv2d_init(jax.random.key(0), 32, 64, 3)
    x = _rand((4, 6, 6, 32), 1)
    conv = lambda p, x: F.conv2d(p, x)
    amx(True)
    assert _uses_uint16_patches(conv, params, x.astype(jnp.bfloat16))
    assert not _uses_uint16_patches(conv, params, x)  # float32 keeps float32
    with _bfloat16_dot.bfloat16_operands():
        assert _uses_uint16_patches(conv, params, x)
    amx(False, native=True)
    assert not _uses_uint16_patches(conv, params, x.astype(jnp.bfloat16))
    # the value in a library program: the reference plus the bias, rounded to bfloat16
    amx(True)
    xb = x.astype(jnp.bfloat16)
    with compiler.library_convolutions():
        got = compiler.jit(conv)(params, xb)
    want = _reference(xb, params["kernel"], (1, 1), ((1, 1), (1, 1)), (1, 1))
    want = want + params["bias"][None, None, None, :]
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2, atol=1e-2)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU formulation")
def test_precision_train_step_uses_it_and_stays_close_to_float32(amx):
    """``precision="bfloat16"`` on a faked AMX CPU: a CNN step's conv runs as bfloat16 patches."""
    amx(True)
    model = CNN((6, 6, 32), 3, conv_features=(64,), dense=(), rngs=nnx.Rngs(0))
    graphdef, params, rest = split_model(model)
    x, y = _rand((8, 6, 6, 32), 1), jnp.arange(8) % 3
    tx = optax.sgd(0.1)
    state = (params, tx.init(params), rest)
    losses, texts = {}, {}
    for precision in (None, "bfloat16"):
        step = compiler.jit(make_train_step(graphdef, "cross_entropy", tx, precision=precision))
        texts[precision] = step.lower(*state, x, y).as_text()
        *_, logs = step(*state, x, y)
        losses[precision] = float(logs["loss"])
    patches = re.compile(r"x288xui16>")  # the 3x3 conv over 32 channels as uint16 patches
    assert patches.search(texts["bfloat16"]) and not patches.search(texts[None])
    assert losses["bfloat16"] != losses[None]  # operands rounded
    np.testing.assert_allclose(losses["bfloat16"], losses[None], rtol=2e-2, atol=1e-2)


def test_vmapped_over_members_as_sweeps_do_equals_each_member():
    x, kernel, static = _operands("3x3")
    xs, kernels = jnp.stack([x, 2 * x, -x]), jnp.stack([kernel, -kernel, 0.5 * kernel])
    loss = lambda x, k: jnp.sum(jax.nn.relu(cb.conv(x, k, *static)) ** 2)
    grads = jax.vmap(jax.grad(loss, argnums=(0, 1)))
    with compiler.library_convolutions():
        got = compiler.jit(grads)(xs, kernels)
    for i in range(3):
        for g, w in zip(got, jax.grad(loss, argnums=(0, 1))(xs[i], kernels[i])):
            np.testing.assert_allclose(g[i], w, rtol=1e-6, atol=1e-6)
