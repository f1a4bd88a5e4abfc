"""bfloat16 matmuls in XLA:CPU's small loops (``nnjax.functional._small_loop_dots``).

jaxlib 0.8 and 0.9 compile no bfloat16 matmul with a float32 result inside a while loop
of under ``xla_cpu_small_while_loop_byte_threshold`` bytes; ``dot_general`` widens the
operands of such small matmuls there (same values). The tests fake the jaxlib's answer
(``small_loops_take_bfloat16_dots``) and check the values against float64 numpy.
"""

import importlib.metadata

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from nnjax.functional import _small_loop_dots

DIMS = [
    (((1,), (0,)), ((), ())),  # (M, K) @ (K, N)
    (((1,), (1,)), ((), ())),  # (M, K) @ (N, K).T
    (((0,), (0,)), ((), ())),  # (K, M).T @ (K, N)
    (((0, 1), (0, 1)), ((), ())),  # two leading axes contracted
    (((2,), (1,)), ((0,), (0,))),  # batched
]
SHAPES = [((3, 5), (5, 4)), ((3, 5), (4, 5)), ((5, 3), (5, 4)), ((2, 3, 5), (2, 3, 4))]
SHAPES.append(((2, 3, 5), (2, 5, 4)))


def _operands(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=s), jnp.bfloat16) for s in shapes]


def _reference(lhs, rhs, dims):
    """float64 numpy ``dot_general`` of the bfloat16 values (exact products)."""
    (lc, rc), (lb, rb) = dims
    a, b = (np.asarray(v, np.float64) for v in (lhs, rhs))
    a = np.moveaxis(a, [*lb, *lc], [*range(len(lb)), *range(a.ndim - len(lc), a.ndim)])
    b = np.moveaxis(b, [*rb, *rc], [*range(len(rb)), *range(len(rb), len(rb) + len(rc))])
    nb, nc = len(lb), len(lc)
    a = a.reshape(*a.shape[: a.ndim - nc], -1)
    b = b.reshape(*b.shape[:nb], -1, *b.shape[nb + nc :])
    if nb:
        return np.einsum("bmk,bkn->bmn", a, b)
    return a @ b


@pytest.fixture(params=[True, False], ids=["jaxlib-has-it", "jaxlib-lacks-it"])
def takes(request, monkeypatch):
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: request.param)
    return request.param


@pytest.mark.parametrize("dims, shapes", list(zip(DIMS, SHAPES, strict=True)))
def test_dot_general_is_the_float32_sum_of_the_bfloat16_products(takes, dims, shapes):
    lhs, rhs = _operands(shapes)
    got = _small_loop_dots.dot_general(lhs, rhs, dims)
    assert got.dtype == jnp.float32
    want = lax.dot_general(lhs, rhs, dims, preferred_element_type=jnp.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, _reference(lhs, rhs, dims), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_only_small_matmuls_are_widened_and_only_where_the_jaxlib_lacks_them(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the default threshold, 1024 bytes
    small = jax.ShapeDtypeStruct((4, 8), jnp.bfloat16), jax.ShapeDtypeStruct((8, 3), jnp.bfloat16)
    rows = 1024 * jax.device_count()  # split over the devices, still over the threshold
    big = jax.ShapeDtypeStruct((rows, 8), jnp.bfloat16), small[1]
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: False)
    assert _small_loop_dots.widens(*small, (4, 3))
    assert not _small_loop_dots.widens(*big, (rows, 3))
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: True)
    assert not _small_loop_dots.widens(*small, (4, 3))


def test_a_matmul_split_over_the_devices_is_measured_a_device_at_a_time(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: False)
    # 2 * 64 * 8 + 2 * 8 * 3 + 4 * 64 * 3 = 1840 bytes: over 1024, a quarter under it
    lhs, rhs = (
        jax.ShapeDtypeStruct((64, 8), jnp.bfloat16),
        jax.ShapeDtypeStruct((8, 3), jnp.bfloat16),
    )
    assert _small_loop_dots.widens(lhs, rhs, (64, 3)) == (jax.device_count() > 1)


def test_widened_operands_go_into_the_program_as_float32(monkeypatch):
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: False)
    lhs, rhs = _operands(SHAPES[0])
    dims = DIMS[0]
    hlo = jax.jit(lambda a, b: _small_loop_dots.dot_general(a, b, dims)).lower(lhs, rhs)
    dots = [line for line in hlo.as_text().splitlines() if "dot_general" in line]
    assert dots and all("bf16" not in line for line in dots), dots
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: True)
    hlo = jax.jit(lambda a, b: _small_loop_dots.dot_general(a, b, dims)).lower(lhs, rhs)
    dots = [line for line in hlo.as_text().splitlines() if "dot_general" in line]
    assert dots and all("bf16" in line for line in dots), dots


@pytest.mark.parametrize(
    "flags, want",
    [
        ("", 1024),
        ("--xla_force_host_platform_device_count=4", 1024),
        ("--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0", 0),
        ("--xla_backend_extra_options=a=1,xla_cpu_small_while_loop_byte_threshold=65536", 65536),
    ],
)
def test_the_threshold_is_read_from_xla_flags(flags, want):
    assert _small_loop_dots.small_loop_byte_threshold(flags) == want


def test_a_threshold_of_zero_widens_nothing(monkeypatch):
    flags = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"
    monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: False)
    small = jax.ShapeDtypeStruct((4, 8), jnp.bfloat16), jax.ShapeDtypeStruct((8, 3), jnp.bfloat16)
    assert not _small_loop_dots.widens(*small, (4, 3))


def test_a_small_loop_of_widened_matmuls_compiles_on_this_jaxlib(monkeypatch):
    # the shape that jaxlib 0.8.1 and 0.9.0 failed to compile with bfloat16 operands
    monkeypatch.setattr(_small_loop_dots, "small_loops_take_bfloat16_dots", lambda: False)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 8)), jnp.bfloat16)
    k = jnp.asarray(np.random.default_rng(1).normal(size=(8, 3)), jnp.bfloat16)

    def loop(x, k, n):
        def body(i, out):
            return out.at[i].set(_small_loop_dots.dot_general(x[i], k, DIMS[0]))

        return lax.fori_loop(0, n, body, jnp.zeros((2, 4, 3), jnp.float32))

    got = jax.jit(loop)(x, k, 2)
    want = np.stack([_reference(x[i], k, DIMS[0]) for i in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_the_probe_answers_for_this_jaxlib_from_inside_a_trace():
    # the first matmul to ask may be traced inside jit: the probe runs on its own thread
    _small_loop_dots.small_loops_take_bfloat16_dots.cache_clear()
    seen = []

    @jax.jit
    def traced(x):
        seen.append(_small_loop_dots.small_loops_take_bfloat16_dots())
        return x + 1

    traced(jnp.ones(2))
    known = {(0, 8, 1): False, (0, 9, 0): False, (0, 10, 2): True}  # measured
    version = tuple(int(p) for p in importlib.metadata.version("jaxlib").split(".")[:3])
    assert seen == [known.get(version, seen[0])]
    assert _small_loop_dots.small_loops_take_bfloat16_dots() == seen[0]


def test_the_products_of_bfloat16_values_are_exact(takes):
    # 1 + 2**-6 + 2**-14 needs 15 bits: exact in float32, not in bfloat16
    a = np.asarray([[1 + 2**-7]], ml_dtypes.bfloat16)
    got = _small_loop_dots.dot_general(jnp.asarray(a), jnp.asarray(a), DIMS[0])
    np.testing.assert_allclose(got, [[(1 + 2**-7) ** 2]], rtol=0, atol=1e-7)
