"""``_bfloat16_dot.written_out``: the kernel gradient's transposed operand read from the
forward's rounding, and no collective for it over a split batch. (The attention
projections' bfloat16 matmuls are counted in ``test_attention_bfloat16.py``.)"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.functional import _bfloat16_dot, _conv_compiler

from ._backend import requires_library_programs
from ._hlo import on_split_batch

BF16, F32 = jnp.bfloat16, jnp.float32


@pytest.mark.parametrize("dtype", [F32, BF16])
def test_written_out_is_its_argument(key, dtype):
    a = jax.random.normal(key, (5, 7)).astype(dtype)
    a = a.at[0, 0].set(-0.0).at[1, 1].set(jnp.nan)
    for key_value in (jnp.zeros(3), jnp.full(3, jnp.nan), -jnp.ones(3)):
        got = _conv_compiler.jit(_bfloat16_dot.written_out)(a, key_value)
        assert got.dtype == dtype
        # bitwise: the conditional's branch is the identity whatever the key holds
        np.testing.assert_array_equal(
            np.asarray(
                jax.lax.bitcast_convert_type(got, jnp.uint16 if dtype == BF16 else jnp.uint32)
            ),
            np.asarray(
                jax.lax.bitcast_convert_type(a, jnp.uint16 if dtype == BF16 else jnp.uint32)
            ),
        )
    # vmapped over keys (a sweep's members): a select of the same values
    keys = jnp.stack([jnp.zeros(3), jnp.ones(3)])
    got = jax.vmap(_bfloat16_dot.written_out, in_axes=(None, 0))(a, keys)
    np.testing.assert_array_equal(np.asarray(got[0], F32), np.asarray(a, F32))
    np.testing.assert_array_equal(np.asarray(got[1], F32), np.asarray(a, F32))


def _fused_computations(text: str) -> dict[str, str]:
    """A compiled program's computations by name."""
    blocks = {}
    for block in text.split("\n\n"):
        head = block.strip().split(" ", 1)[0].lstrip("%")
        blocks[head] = block
    return blocks


def _transpose_reads(text: str, shape: str) -> list[str]:
    """Parameter dtypes of the fusions that write the ``shape`` (e.g. ``bf16[40,30]``) array."""
    blocks, reads = _fused_computations(text), []
    for line in text.splitlines():
        if re.search(rf"= {re.escape(shape)}\{{[^}}]*\}} fusion\(", line):
            called = re.search(r"calls=%([^,\s}]+)", line).group(1)
            reads += re.findall(r"parameter\(\d+\)", blocks[called]) and re.findall(
                r"= (\w+)\[[^\]]*\]\{?[^ ]* parameter\(", blocks[called]
            )
    return reads


@requires_library_programs
def test_kernel_gradient_transposes_the_rounded_array_not_its_float32_source(key):
    """The transposing copy reads the forward's bfloat16 rounding (one pass of 2 bytes an
    element), not the float32 input that XLA would round again in transposed order."""
    x = jax.random.normal(key, (30, 40))
    kernel = jax.random.normal(jax.random.key(1), (40, 24))
    grad = jax.grad(lambda k, v: jnp.sum(_bfloat16_dot.matmul(v, k) ** 2))
    text = _conv_compiler.jit(grad).lower(kernel, x).compile().as_text()
    assert "conditional(" in text
    reads = _transpose_reads(text, "bf16[40,30]")
    assert reads and set(reads) == {"bf16"}, reads
    # the values: float32 sums of the bfloat16 products, as before
    xb, kb = (np.asarray(a.astype(BF16), np.float64) for a in (x, kernel))
    dy = np.asarray(jnp.asarray(2 * (xb @ kb), F32).astype(BF16), np.float64)
    want = xb.T @ dy
    got = np.asarray(_conv_compiler.jit(grad)(kernel, x), np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@requires_library_programs
@pytest.mark.devices(2)
def test_kernel_gradient_over_a_split_batch_adds_no_collective_for_the_key(key):
    x = jax.random.normal(key, (32, 40))
    kernel = jax.random.normal(jax.random.key(1), (40, 24))
    grad = jax.grad(lambda k, v: jnp.sum(_bfloat16_dot.matmul(v, k) ** 2))
    want = _conv_compiler.jit(grad)(kernel, x)
    text, got = on_split_batch(grad, kernel, x)
    # one all-reduce: the kernel gradient's sum over the two halves of the batch
    assert len(re.findall(r"all-reduce(?:-start)?\(", text)) == 1
    assert "all-gather" not in text and "collective-permute" not in text
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-3)


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.devices(2)
@pytest.mark.parametrize("out", [4, 64])  # the patch matrix transposed, or dy
def test_bfloat16_convolution_kernel_gradient_keeps_a_split_batch_split(key, out):
    from nnjax.functional import _conv_bfloat16

    x = jax.random.normal(key, (8, 6, 6, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, out))
    pads = ((1, 1), (1, 1))
    conv = lambda k, v: jnp.sum(_conv_bfloat16.conv(v, k, (1, 1), pads, (1, 1)) ** 2)
    want = _conv_compiler.jit(jax.grad(conv))(kernel, x)
    text, got = on_split_batch(jax.grad(conv), kernel, x)
    assert "all-gather" not in text and "collective-permute" not in text
    got = np.asarray(got)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5 * np.abs(want).max())
