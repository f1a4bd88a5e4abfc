"""``_attention_bfloat16.attention``: the attention products in bfloat16 under
``precision="bfloat16"``, against float64 references that round where it rounds."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import _attention_bfloat16, _bfloat16_dot, _conv_compiler

from ._backend import requires_library_programs
from ._hlo import bfloat16_dot_computations, on_split_batch, skip_without_ynn_matmuls

BF16, F32 = jnp.bfloat16, jnp.float32


def _rounded(a) -> np.ndarray:
    """float32 ``a`` rounded to bfloat16, as float64."""
    return np.asarray(jnp.asarray(a, F32).astype(BF16).astype(F32), np.float64)


def _heads_first(a) -> np.ndarray:
    b, t, h, d = a.shape
    return np.swapaxes(np.asarray(a, np.float64), 1, 2).reshape(b * h, t, d)


def _reference(q, k, v, allowed, do):
    """Output and ``(dq, dk, dv)`` in float64, each product's operands rounded as the op's.

    ``allowed`` ``(B*H, T, S)``; the softmax and its gradient in float64 (the op's in
    float32: within 1e-6), the weights and the logits' gradient rounded to bfloat16 as
    operands. Returns heads-first ``(B*H, ., D)`` arrays.
    """
    qb, kb, vb = (_rounded(_heads_first(a)) for a in (q, k, v))
    scale = 1.0 / np.sqrt(q.shape[-1])
    logits = np.where(allowed, qb @ np.swapaxes(kb, 1, 2) * scale, np.finfo(np.float32).min)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    wb = _rounded(w.astype(np.float32))
    dob = _rounded(_heads_first(do).astype(np.float32))
    dw = dob @ np.swapaxes(vb, 1, 2)
    d_logits = np.where(allowed, w * (dw - (dw * w).sum(-1, keepdims=True)) * scale, 0.0)
    dlb = _rounded(d_logits.astype(np.float32))
    return wb @ vb, (dlb @ kb, np.swapaxes(dlb, 1, 2) @ qb, np.swapaxes(wb, 1, 2) @ dob)


def _close(actual, expected, rtol):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        np.asarray(actual, np.float64), expected, rtol=rtol, atol=rtol * scale
    )


CASES = {  # (T, S, mask kind, causal)
    "self": (6, 6, None, False),
    "causal": (6, 6, None, True),
    "cross, key padding, a query row that sees nothing": (5, 7, "padding", False),
}


@pytest.mark.parametrize(  # the most general case in the default run, all with `-m slow`
    "case",
    [
        c if c.startswith("cross") else pytest.param(c, marks=pytest.mark.slow)
        for c in sorted(CASES)
    ],
)
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_attention_and_its_gradients_round_the_products_operands(key, case):
    t, s, mask_kind, causal = CASES[case]
    kq, kk, kv, kd, km = jax.random.split(key, 5)
    b, h, d = 2, 3, 8
    q = jax.random.normal(kq, (b, t, h, d))
    k, v = jax.random.normal(kk, (b, s, h, d)), jax.random.normal(kv, (b, s, h, d))
    do = jax.random.normal(kd, (b, t, h, d))
    mask = None
    allowed = np.ones((b, h, t, s), bool)
    if causal:
        allowed &= np.tril(np.ones((t, s), bool))
    if mask_kind == "padding":
        mask = jax.random.bernoulli(km, 0.6, (b, 1, 1, s)).at[0].set(False)  # batch 0: none
        allowed &= np.asarray(mask)
    kernel = jnp.ones((4, 4))
    run = _conv_compiler.jit(
        lambda q, k, v: jax.vjp(
            lambda *a: _attention_bfloat16.attention(*a, mask, causal, kernel), q, k, v
        )
    )
    out, vjp = run(q, k, v)
    grads = vjp(do)
    want, want_grads = _reference(q, k, v, allowed.reshape(b * h, t, s), do)
    assert out.dtype == F32 and out.shape == (b, t, h, d)
    _close(_heads_first(out), want, 1e-5)  # float32 sums of the same bfloat16 products
    for got, ref in zip(grads, want_grads, strict=True):
        assert got.dtype == F32
        _close(_heads_first(got), ref, 2e-5)


def _attention_loss(params, x, rounded, **kw):
    with _bfloat16_dot.bfloat16_operands(rounded):
        return jnp.sum(jnp.sin(F.multi_head_attention(params, x, **kw)))


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_multi_head_attention_takes_it_under_precision_only(key):
    skip_without_ynn_matmuls()
    params = F.multi_head_attention_init(key, 32, num_heads=4)
    x = jax.random.normal(jax.random.key(1), (4, 6, 32))

    def dots(rounded, **kw):
        grad = _conv_compiler.jit(jax.grad(lambda p: _attention_loss(p, x, rounded, **kw)))
        return bfloat16_dot_computations(grad.lower(params).compile().as_text())

    # 4 projections (9 products with their gradients) and the core's 2 + 4 products
    assert dots(True) >= 9 + 6
    assert dots(True, dropout_rate=0.5, key=jax.random.key(2)) < 9 + 6  # dropout: float32
    assert dots(False) == 0
    want = jax.jit(jax.value_and_grad(lambda p: _attention_loss(p, x, False)))(params)
    got = _conv_compiler.jit(jax.value_and_grad(lambda p: _attention_loss(p, x, True)))(params)
    np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=2e-2, atol=1e-3)
    assert float(got[0]) != float(want[0])  # rounded
    for name in ("query", "value", "out"):  # within bfloat16 error of float32's
        g, w = np.asarray(got[1][name]["kernel"]), np.asarray(want[1][name]["kernel"])
        np.testing.assert_allclose(g, w, rtol=0, atol=3e-2 * np.abs(w).max())


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.devices(2)
def test_split_batch_adds_no_gather(key):
    params = F.multi_head_attention_init(key, 16, num_heads=2)
    x = jax.random.normal(jax.random.key(1), (4, 5, 16))
    grad = jax.grad(lambda p, v: _attention_loss(p, v, True, causal=True))
    want = _conv_compiler.jit(grad)(params, x)
    text, got = on_split_batch(grad, params, x)
    assert "all-gather" not in text and "collective-permute" not in text
    assert re.search(r"all-reduce", text)  # the parameters' gradients, summed once
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
