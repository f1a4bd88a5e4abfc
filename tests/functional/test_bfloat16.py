"""``_bfloat16``: the integer rounding to bfloat16 against XLA's ``convert``, and the
widening whose gradient uses it in library programs (and only there)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax import _hardware
from nnjax.functional import _bfloat16, _conv_compiler

from ._backend import requires_library_programs

BF16, F32 = jnp.bfloat16, jnp.float32


def _bits(a) -> np.ndarray:
    return np.asarray(a).view(np.uint16)


def _hard_floats(n: int = 200_000) -> np.ndarray:
    """Float32 values over the whole exponent range, ties, and every special case."""
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**16, 1000, dtype=np.uint32) << 16) | np.uint32(0x8000)
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 3.4028235e38, -3.4028235e38, 1e-45,
         1.1754942e-38, 1.00390625, 1.01171875, 1.0039063, -1.00390625],
        np.float32,
    )  # fmt: skip
    return np.concatenate([bits.view(np.float32), ties.view(np.float32), specials])


def _subnormal(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x != 0) & (np.abs(x) < np.finfo(np.float32).tiny)


def test_round_to_bfloat16_is_bitwise_a_reference_rounding():
    x = _hard_floats()
    actual = jax.jit(_bfloat16.round_to_bfloat16)(x)
    assert actual.dtype == BF16 and actual.shape == x.shape
    nan = np.isnan(x)
    assert np.isnan(np.asarray(actual, F32)[nan]).all()  # a NaN stays a NaN
    # ml_dtypes' software rounding (NumPy's cast), subnormals included
    with np.errstate(over="ignore"):  # the largest floats round to infinity
        reference = x[~nan].astype(BF16)
    np.testing.assert_array_equal(_bits(actual)[~nan], _bits(reference))
    # XLA's convert; a CPU with native conversion (AVX512-BF16) may flush subnormals
    xla = jax.jit(lambda v: v.astype(BF16))(x)
    normal = ~nan & ~_subnormal(x)
    np.testing.assert_array_equal(_bits(actual)[normal], _bits(xla)[normal])


def test_bfloat16_bits_are_the_rounding_and_widen_back_exactly():
    x = _hard_floats()
    bits = jax.jit(_bfloat16.bfloat16_bits)(x)
    assert bits.dtype == jnp.uint16 and bits.shape == x.shape
    nan = np.isnan(x)
    with np.errstate(over="ignore"):  # the largest floats round to infinity
        reference = x[~nan].astype(BF16)
    np.testing.assert_array_equal(np.asarray(bits)[~nan], _bits(reference))
    wide = np.asarray(jax.jit(_bfloat16.from_bfloat16_bits)(bits))
    assert wide.dtype == np.float32 and np.isnan(wide[nan]).all()
    np.testing.assert_array_equal(wide[~nan], reference.astype(np.float32))


def test_round_to_bfloat16_ties_go_to_even():
    one_plus_half_ulp = np.float32(1.00390625)  # halfway between 1 and 1 + 2**-7
    three_halves_ulp = np.float32(1.01171875)  # halfway between 1 + 2**-7 and 1 + 2**-6
    out = np.asarray(_bfloat16.round_to_bfloat16(jnp.array([one_plus_half_ulp, three_halves_ulp])))
    np.testing.assert_array_equal(out.astype(np.float32), [1.0, 1.015625])


def test_round_to_bfloat16_differentiates_like_a_cast():
    x = jnp.linspace(-3.0, 3.0, 11, dtype=F32)
    t = jnp.linspace(0.1, 1.7, 11, dtype=F32)
    y, ty = jax.jvp(_bfloat16.round_to_bfloat16, (x,), (t,))
    np.testing.assert_array_equal(_bits(ty), _bits(t.astype(BF16)))
    np.testing.assert_array_equal(_bits(y), _bits(x.astype(BF16)))
    g = jax.grad(lambda v: jnp.sum(_bfloat16.round_to_bfloat16(v).astype(F32) * t))(x)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(t.astype(BF16).astype(F32)))


@requires_library_programs
@pytest.mark.parametrize("native", [False, True])
def test_to_bfloat16_rounds_with_integers_in_library_programs_on_the_cpu(monkeypatch, native):
    # natively or emulated: XLA:CPU makes each convert to bfloat16 a fusion of its own
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: native)
    x = _hard_floats(20_000)
    nan = np.isnan(x)
    # fresh functions: JAX caches a trace per function, blind to the library context
    with _conv_compiler.library_convolutions():
        jaxpr = str(jax.make_jaxpr(lambda v: _bfloat16.to_bfloat16(v))(x))
        fast = jax.jit(lambda v: _bfloat16.to_bfloat16(v))(x)
    assert "bitcast_convert_type" in jaxpr
    assert "bitcast_convert_type" not in str(jax.make_jaxpr(lambda v: _bfloat16.to_bfloat16(v))(x))
    assert fast.dtype == BF16 and np.isnan(np.asarray(fast, F32)[nan]).all()
    with np.errstate(over="ignore"):
        reference = x[~nan].astype(BF16)
    np.testing.assert_array_equal(_bits(fast)[~nan], _bits(reference))


@requires_library_programs
def test_forward_only_library_programs_round_outputs_with_xlas_convert():
    # there the integer rounding kept YNNPACK from fusing a CNN's layers; matmul operands
    # (to_bfloat16) keep it (module docstring)
    x = _hard_floats(2_000)[-3_000:].reshape(60, 50)  # the special cases among them
    output = lambda v: _bfloat16.round_like(v, BF16)
    with _conv_compiler.library_convolutions():
        training = str(jax.make_jaxpr(lambda v: output(v))(x))
        with F.forward_only():
            forward = str(jax.make_jaxpr(lambda v: output(v))(x))
            operand = str(jax.make_jaxpr(lambda v: _bfloat16.to_bfloat16(v))(x))
            got = jax.jit(lambda v: output(v))(x)
    assert "bitcast_convert_type" in training and "bitcast_convert_type" in operand
    assert "bitcast_convert_type" not in forward
    assert "convert_element_type[new_dtype=bfloat16" in forward
    plain = jax.jit(lambda v: v.astype(BF16))(x)  # outside: XLA's convert
    np.testing.assert_array_equal(_bits(got), _bits(plain))


def test_to_bfloat16_keeps_xlas_convert_off_the_cpu(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    with _conv_compiler.library_convolutions():
        jaxpr = str(jax.make_jaxpr(lambda v: _bfloat16.to_bfloat16(v))(jnp.ones(3, F32)))
    assert "bitcast_convert_type" not in jaxpr
    assert "convert_element_type[new_dtype=bfloat16" in jaxpr


@requires_library_programs
@pytest.mark.parametrize("shape", [(1, 300), (1, 1, 300)])
def test_one_row_keeps_xlas_convert_in_library_programs(monkeypatch, shape):
    # a one-row kernel gradient is an outer product: XLA copied the integer rounding of
    # its vectors into every element of the optimizer's fusion (module docstring)
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    x = jnp.asarray(_hard_floats()[-300:]).reshape(shape)  # the special cases among them
    widen = lambda v: _widened_cotangent(v.astype(BF16), v)  # the cotangent's rounding
    with _conv_compiler.library_convolutions():
        rounding = str(jax.make_jaxpr(lambda v: _bfloat16.to_bfloat16(v))(x))
        widening = str(jax.make_jaxpr(lambda v: widen(v))(x))
        two_rows = str(jax.make_jaxpr(lambda v: _bfloat16.to_bfloat16(v))(x.reshape(2, 150)))
        got = jax.jit(lambda v: (_bfloat16.to_bfloat16(v), widen(v)))(x)
    for jaxpr in (rounding, widening):
        assert "bitcast_convert_type" not in jaxpr
        assert "convert_element_type[new_dtype=bfloat16" in jaxpr
    assert "bitcast_convert_type" in two_rows  # two rows: integer rounding
    plain = jax.jit(lambda v: (v.astype(BF16), widen(v)))(x)  # outside: XLA's convert
    for a, b in zip(got, plain):
        assert a.dtype == BF16 and a.shape == shape
        np.testing.assert_array_equal(_bits(a), _bits(b))


# the losses widen by `to_float32`: a user's `astype(F32)` transposes to XLA's convert
def _lstm_loss(params, xs):
    _, ys = F.lstm(params, xs)
    return jnp.sum(_bfloat16.to_float32(ys) ** 2)


def _dense_loss(params, x):
    return jnp.sum(_bfloat16.to_float32(F.dense(params, x)) ** 2)


def _cnn_widened_loss(params, x):
    h = jax.nn.relu(F.conv2d(params["conv"], x))
    h = F.max_pool2d(h, 2)
    return _dense_loss(params["dense"], h.reshape(h.shape[0], -1))


def _on_bfloat16_grid(params):
    """``params`` with every value rounded to bfloat16, kept float32."""
    return jax.tree.map(lambda a: a.astype(BF16).astype(F32), params)


def _converted_to_bfloat16(jaxpr: str) -> set[tuple[int, ...]]:
    """The shapes of the arrays XLA's ``convert`` rounds to bfloat16 in ``jaxpr``."""
    found = re.findall(r":bf16\[([\d,]*)\] = convert_element_type\[new_dtype=bfloat16", jaxpr)
    return {tuple(int(d) for d in dims.split(",") if d) for dims in found}


@requires_library_programs
@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("op", ["conv_pool", "dense", "lstm"])
@pytest.mark.slow
def test_bfloat16_ops_round_with_integers_in_library_programs(key, monkeypatch, native, op):
    """No XLA convert to bfloat16 in a library program's forward and backward pass."""
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: native)
    kp, kx = jax.random.split(key)
    loss, params, x = {
        "conv_pool": (
            _cnn_widened_loss,
            # a kernel on the bfloat16 grid: with AMX the library's convolution rounds its
            # kernel (_conv_bfloat16), and the max pool's gradient follows the argmax
            {
                "conv": _on_bfloat16_grid(F.conv2d_init(kp, 3, 8, 3)),
                "dense": F.dense_init(kp, 4 * 4 * 8, 5),
            },
            jax.random.normal(kx, (4, 8, 8, 3)),
        ),
        "dense": (_dense_loss, F.dense_init(kp, 6, 5), jax.random.normal(kx, (4, 6))),
        "lstm": (_lstm_loss, F.lstm_cell_init(kp, 3, 4), jax.random.normal(kx, (2, 5, 3))),
    }[op]
    x = x.astype(BF16)
    grad = lambda p, v: jax.grad(loss, argnums=(0, 1))(p, v)
    outside = str(jax.make_jaxpr(grad)(params, x))
    with _conv_compiler.library_convolutions():
        inside = str(jax.make_jaxpr(lambda p, v: grad(p, v))(params, x))
        got = jax.jit(lambda p, v: grad(p, v))(params, x)
    # activations and their gradients; only float32 parameters may be cast by XLA
    param_shapes = {tuple(a.shape) for a in jax.tree.leaves(params)}
    assert _converted_to_bfloat16(outside) - param_shapes
    assert _converted_to_bfloat16(inside) <= param_shapes
    reference = jax.jit(grad)(params, x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a, F32), np.asarray(b, F32), rtol=2e-2, atol=1e-2)


@requires_library_programs
@pytest.mark.parametrize("op", ["lstm", "gru"])
def test_recurrences_round_float32_parameters_with_integers(key, monkeypatch, op):
    # XLA's convert of the weights was a pass of its own at every step (_bfloat16.round_floating)
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    kp, kx = jax.random.split(key)
    params = {"lstm": F.lstm_cell_init, "gru": F.gru_cell_init}[op](kp, 3, 4)
    xs = jax.random.normal(kx, (2, 5, 3)).astype(BF16)
    run = getattr(F, op)
    loss = lambda p, v: jnp.sum(_bfloat16.to_float32(run(p, v)[1]) ** 2)
    grad = lambda p, v: jax.value_and_grad(loss, argnums=(0, 1))(p, v)
    with _conv_compiler.library_convolutions():
        inside = str(jax.make_jaxpr(lambda p, v: grad(p, v))(params, xs))
        got = jax.jit(lambda p, v: grad(p, v))(params, xs)
    param_shapes = {tuple(a.shape) for a in jax.tree.leaves(params)}
    outside = str(jax.make_jaxpr(grad)(params, xs))
    assert _converted_to_bfloat16(outside) & param_shapes  # XLA's convert outside
    assert not _converted_to_bfloat16(inside) & param_shapes
    reference = jax.jit(grad)(params, xs)  # the same roundings, by XLA's convert
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a, F32), np.asarray(b, F32), rtol=1e-6, atol=1e-7)


def test_to_bfloat16_differentiates_like_a_cast(monkeypatch):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    x = jnp.linspace(-3.0, 3.0, 11, dtype=F32)
    t = jnp.linspace(0.1, 1.7, 11, dtype=F32)
    loss = lambda v: jnp.sum(_bfloat16.to_bfloat16(v).astype(F32) * t)
    with _conv_compiler.library_convolutions():
        g = jax.jit(jax.grad(loss))(x)
        _, ty = jax.jvp(lambda v: _bfloat16.to_bfloat16(v), (x,), (t,))
    np.testing.assert_array_equal(np.asarray(g), np.asarray(t.astype(BF16).astype(F32)))
    np.testing.assert_array_equal(_bits(ty), _bits(t.astype(BF16)))
    as_bf16 = jnp.ones(2, BF16)
    assert _bfloat16.to_bfloat16(as_bf16).dtype == BF16


def _widened_cotangent(x, ct):
    return jax.vjp(_bfloat16.to_float32, x)[1](ct)[0]


def test_to_float32_in_a_library_program_rounds_the_cotangent_like_convert():
    x = jnp.asarray(_hard_floats(5000)).astype(BF16)
    ct = jnp.asarray(_hard_floats(5000)[::-1].copy())
    finite = np.isfinite(np.asarray(ct)) & ~_subnormal(ct)  # as above: XLA may flush those
    with _conv_compiler.library_convolutions():
        y = _bfloat16.to_float32(x)
        fast = jax.jit(lambda a, b: _widened_cotangent(a, b))(x, ct)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x.astype(F32)))
    assert fast.dtype == BF16
    # outside (a fresh function: a trace is cached per function): XLA's convert
    plain = jax.jit(lambda a, b: _widened_cotangent(a, b))(x, ct)
    np.testing.assert_array_equal(_bits(fast)[finite], _bits(plain)[finite])


def test_to_float32_keeps_forward_mode_outside_library_programs():
    x = jnp.linspace(-2.0, 2.0, 5).astype(BF16)
    y, t = jax.jvp(_bfloat16.to_float32, (x,), (jnp.ones(5, BF16),))
    assert y.dtype == t.dtype == F32
    np.testing.assert_array_equal(np.asarray(t), np.ones(5))
    f32 = jnp.ones(3, F32)
    assert _bfloat16.to_float32(f32).dtype == F32


def test_to_float32_second_order_gradients_match_the_plain_cast():
    x = jnp.linspace(-1.5, 1.5, 7).astype(BF16)
    cube = lambda v: jnp.sum(_bfloat16.to_float32(v) ** 3)
    second = lambda: jax.grad(lambda v: jnp.sum(jax.grad(cube)(v).astype(F32)))(x)
    with _conv_compiler.library_convolutions():
        fast = second()
    np.testing.assert_array_equal(np.asarray(fast, F32), np.asarray(second(), F32))


def _cnn_loss(params, x):
    h = jax.nn.relu(F.conv2d(params["conv"], x))
    h = F.max_pool2d(h, 2)
    logits = F.dense(params["dense"], h.reshape(h.shape[0], -1))
    return jnp.sum(logits.astype(F32) ** 2)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("library", [False, pytest.param(True, marks=requires_library_programs)])
def test_emulated_bfloat16_gradients_agree_in_and_out_of_library_programs(
    key, monkeypatch, library
):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    kc, kd, kx = jax.random.split(key, 3)
    params = {"conv": F.conv2d_init(kc, 3, 8, 3), "dense": F.dense_init(kd, 4 * 4 * 8, 5)}
    x = jax.random.normal(kx, (4, 8, 8, 3)).astype(BF16)
    # fresh functions: JAX caches a trace per function, blind to the library context
    reference = jax.jit(lambda p, v: jax.grad(_cnn_loss)(p, v))(params, x)
    with _conv_compiler.library_convolutions(library):
        got = jax.jit(lambda p, v: jax.grad(_cnn_loss)(p, v))(params, x)
        jaxpr = jax.make_jaxpr(lambda p, v: _cnn_loss(p, v))(params, x)
    widenings = str(jaxpr).count("custom_vjp_call")
    assert widenings == (3 if library else 0)  # conv, max pool and dense inputs
    # same roundings; XLA may keep a float32 value where a round trip to bfloat16 folds
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-2, atol=1e-2)
