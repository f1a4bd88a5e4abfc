"""Tests for multi_head_attention against torch.nn.MultiheadAttention; masks and dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.errors import ShapeError
from nnjax.functional import attention

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms

B, T, S, E, HEADS = 2, 4, 5, 6, 2


def _params(kv=E, seed=0):
    d = E // HEADS
    shapes = {
        "query": {"kernel": (E, HEADS, d), "bias": (HEADS, d)},
        "key": {"kernel": (kv, HEADS, d), "bias": (HEADS, d)},
        "value": {"kernel": (kv, HEADS, d), "bias": (HEADS, d)},
        "out": {"kernel": (HEADS, d, E), "bias": (E,)},
    }
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
    return jax.tree.unflatten(treedef, [rand(s, seed + i) for i, s in enumerate(leaves)])


def torch_mha_params(p):
    """nnx layout -> nn.MultiheadAttention state (differentiable in the torch tensors)."""
    w = {
        n: p[n]["kernel"].reshape(p[n]["kernel"].shape[0], -1).T for n in ("query", "key", "value")
    }
    out = {
        "out_proj.weight": p["out"]["kernel"].reshape(-1, E).T,
        "out_proj.bias": p["out"]["bias"],
        "in_proj_bias": torch.cat([p[n]["bias"].reshape(-1) for n in ("query", "key", "value")]),
    }
    if w["key"].shape[1] == E:
        out["in_proj_weight"] = torch.cat([w["query"], w["key"], w["value"]])
    else:
        out |= {"q_proj_weight": w["query"], "k_proj_weight": w["key"],
                "v_proj_weight": w["value"]}  # fmt: skip
    return out


def _torch_module(kv, dtype):
    module = torch.nn.MultiheadAttention(E, HEADS, kdim=kv, vdim=kv, batch_first=True)
    return module.to(dtype).eval()


def _torch_attention(p, x, context, key_padding=None, attn_mask=None, causal=False):
    dtype = x.dtype
    kv = p["key"]["kernel"].shape[0]
    module = _torch_module(kv, dtype)
    context = x if context is None else context
    if causal:
        causal_mask = torch.ones(x.shape[1], context.shape[1], dtype=torch.bool).triu(1)
        attn_mask = causal_mask if attn_mask is None else attn_mask | causal_mask
    out, _ = torch.func.functional_call(
        module, torch_mha_params(p), (x, context, context),
        {"key_padding_mask": key_padding, "attn_mask": attn_mask, "need_weights": False},
    )  # fmt: skip
    return out


PADDING = np.array([[True] * S, [True, True, False, True, False]])


@pytest.mark.parametrize(
    ("cross", "kv", "padding", "causal"),
    [
        (False, E, True, True),
        (True, 3, True, False),
        pytest.param(False, E, False, False, marks=pytest.mark.slow),
        pytest.param(True, E, False, True, marks=pytest.mark.slow),
    ],
)  # two of four in the slow step (among the slowest, 2026-12-01)
def test_matches_torch(cross, kv, padding, causal):
    x = rand((B, T if cross else S, E), 10)
    context = rand((B, S, kv), 11) if cross else None
    mask = PADDING if padding else None
    fn = lambda p, x, *c: F.multi_head_attention(p, x, *c, mask=mask, causal=causal)
    kp = torch.from_numpy(~PADDING) if padding else None
    torch_fn = lambda p, x, *c: _torch_attention(p, x, *(c or (None,)), kp, causal=causal)
    args = (_params(kv), x) + ((context,) if cross else ())
    assert_matches_torch(fn, torch_fn, args)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_per_query_mask_matches_torch_attn_mask():
    mask = np.random.default_rng(0).random((B, T, S)) > 0.3
    mask[:, :, 0] = True  # every query sees a key
    x, context = rand((B, T, E), 1), rand((B, S, E), 2)
    fn = lambda p, x, c: F.multi_head_attention(p, x, c, mask=mask)
    # torch wants a (B * heads, T, S) mask, True = blocked.
    blocked = torch.from_numpy(~mask).repeat_interleave(HEADS, dim=0)
    torch_fn = lambda p, x, c: _torch_attention(p, x, c, attn_mask=blocked)
    assert_matches_torch(fn, torch_fn, (_params(), x, context))
    full = F.multi_head_attention(_params(), x, context, mask=mask[:, None])
    np.testing.assert_allclose(full, fn(_params(), x, context), rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_dropout_path_without_dropout_equals_fused_path(key):
    """The explicit-weights path (used for dropout) is the same attention."""
    p = jax.tree.map(jnp.asarray, _params())
    x = jax.random.normal(key, (B, T, E))
    q, k, v = (attention._project("t", n, p[n], x) for n in ("query", "key", "value"))
    mask = jnp.asarray(PADDING[:, :T])[:, None, None]
    weights = attention.attention_weights(q, k, mask, True)
    o = jnp.einsum("bhts,bshd->bthd", weights, v)
    fused = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=True)
    np.testing.assert_allclose(o, fused, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_dropout_drops_attention_weights_with_the_given_key(key):
    p = jax.tree.map(jnp.asarray, _params())
    x = jax.random.normal(key, (B, T, E))
    k_drop = jax.random.key(3)
    y = F.multi_head_attention(p, x, dropout_rate=0.5, key=k_drop)
    q, k, v = (attention._project("t", n, p[n], x) for n in ("query", "key", "value"))
    weights = F.dropout(k_drop, attention.attention_weights(q, k, None, False), 0.5)
    o = jnp.einsum("bhts,bshd->bthd", weights, v)
    expected = jnp.einsum("bthd,hdo->bto", o, p["out"]["kernel"]) + p["out"]["bias"][None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    other = F.multi_head_attention(p, x, dropout_rate=0.5, key=jax.random.key(4))
    assert not np.allclose(y, other)
    np.testing.assert_allclose(
        F.multi_head_attention(p, x, dropout_rate=0.0, key=k_drop),
        F.multi_head_attention(p, x), rtol=1e-6, atol=1e-6,
    )  # fmt: skip


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_init_structure_and_check_grads(key):
    params = F.multi_head_attention_init(key, 8, num_heads=4, kv_features=3, out_features=5)
    shapes = jax.tree.map(jnp.shape, params)
    assert shapes == {
        "query": {"kernel": (8, 4, 2), "bias": (4, 2)},
        "key": {"kernel": (3, 4, 2), "bias": (4, 2)},
        "value": {"kernel": (3, 4, 2), "bias": (4, 2)},
        "out": {"kernel": (4, 2, 5), "bias": (5,)},
    }
    assert "bias" not in F.multi_head_attention_init(key, 4, num_heads=2, use_bias=False)["out"]
    with jax.enable_x64(True):
        p = _params()
        fn = lambda p, x: F.multi_head_attention(p, x, mask=PADDING[:, :3], causal=True)
        check_grads(jax.jit(fn), (p, rand((B, 3, E), 1)), order=1)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_float16_agrees_with_float32(key):
    """float16 runs (on the CPU the explicit path: XLA:CPU has no float16 -> float32 matmul,
    which ``jax.nn.dot_product_attention`` asks for) and agrees with float32."""
    p = jax.tree.map(jnp.asarray, _params())
    x = jax.random.normal(key, (B, T, E))
    mask = jnp.asarray(PADDING[:, :T])
    fn = lambda p, x: F.multi_head_attention(p, x, mask=mask, causal=True)
    half = fn(*jax.tree.map(lambda a: a.astype(jnp.float16), (p, x)))
    assert half.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(half, np.float32), fn(p, x), rtol=1e-2, atol=1e-2)
    assert_transforms(fn, p, x, dtypes=(jnp.float16,))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_jit_vmap_grad_float32_bfloat16(key):
    p = jax.tree.map(jnp.asarray, _params())
    mask = jnp.asarray(PADDING[:, :T])
    fn = lambda p, x: F.multi_head_attention(p, x, mask=mask, causal=True)
    assert_transforms(fn, p, jax.random.normal(key, (B, T, E)))
    drop = lambda p, x: F.multi_head_attention(p, x, dropout_rate=0.2, key=jax.random.key(1))
    # the explicit (dropout) path in bfloat16 only: float32 is covered by the tests above
    assert_transforms(drop, p, jax.random.normal(key, (B, T, E)), dtypes=(jnp.bfloat16,))


def test_errors_name_op_argument_and_value(key):
    p = jax.tree.map(jnp.asarray, _params())
    x = jnp.ones((B, T, E))
    with pytest.raises(AssertionError, match=r"multi_head_attention: argument `x` has shape"):
        F.multi_head_attention(p, jnp.ones((B, T, 4)))
    with pytest.raises(AssertionError, match=r"argument `mask` has shape \(2, 3\)"):
        F.multi_head_attention(p, x, mask=jnp.ones((B, 3), bool))
    with pytest.raises(TypeError, match=r"argument `mask` has dtype float32, expected bool"):
        F.multi_head_attention(p, x, mask=jnp.ones((B, T)))
    with pytest.raises(ValueError, match=r"`dropout_rate`=0.1 needs a PRNG `key`"):
        F.multi_head_attention(p, x, dropout_rate=0.1)
    with pytest.raises(AssertionError, match=r"argument `context` has shape \(2, 5, 3\)"):
        F.multi_head_attention(p, x, jnp.ones((B, S, 3)))
    with pytest.raises(ValueError, match=r"`num_heads`=4 does not divide `features`=6"):
        F.multi_head_attention_init(key, 6, num_heads=4)


def test_pytorch_style_masks_are_explained():
    """A ``(T, S)`` attn_mask is read as key padding: the message says how to pass it."""
    p = jax.tree.map(jnp.asarray, _params())
    x, context = jnp.ones((B, T, E)), jnp.ones((B, S, E))
    with pytest.raises(ShapeError) as info:
        F.multi_head_attention(p, x, context, mask=jnp.ones((T, S), bool))
    message = str(info.value)
    assert "argument `mask` has shape (4, 5), expected (2, 5)" in message
    for part in ("read as key padding (batch, keys)", "(batch or 1, heads or 1, queries, keys)",
                 "mask[None, None]", "causal=True", "True means 'may attend'"):  # fmt: skip
        assert part in message, part
    with pytest.raises(ShapeError, match=r"\(batch \* heads, queries, keys\) bool attn_mask"):
        F.multi_head_attention(p, x, context, mask=jnp.ones((B * HEADS, T, S), bool))
    every = jnp.ones((T, S), bool)[None, None]  # one (T, S) mask for every sequence and head
    y = F.multi_head_attention(p, x, context, mask=every)
    np.testing.assert_allclose(y, F.multi_head_attention(p, x, context), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dropout_rate": 1.5}, ValueError, r"`dropout_rate` must be in \[0, 1\], got 1.5"),
        ({"dropout_rate": "0.1"}, TypeError, r"`dropout_rate` must be a real scalar"),
        ({"dropout_rate": 0.1, "key": 0}, TypeError, r"`key` must be a PRNG key .*got 0"),
    ],
)
def test_dropout_arguments_are_named_as_the_ops(kwargs, error, match):
    p = jax.tree.map(jnp.asarray, _params())
    with pytest.raises(error, match=rf"multi_head_attention: {match}"):
        F.multi_head_attention(p, jnp.ones((B, T, E)), **({"key": jax.random.key(0)} | kwargs))


def test_top_level_and_projection_keys_are_checked():
    p = jax.tree.map(jnp.asarray, _params())
    x = jnp.ones((B, T, E))
    with pytest.raises(KeyError, match=r"multi_head_attention: `params` has no key 'query'"):
        F.multi_head_attention({k: v for k, v in p.items() if k != "query"}, x)
    with pytest.raises(ValueError, match=r"`params` has an unexpected key 'qeury' \(did you mean"):
        F.multi_head_attention({**p, "qeury": p["query"]}, x)
    bad_out = {**p, "out": {"kernel": p["out"]["kernel"], "bais": p["out"]["bias"]}}
    with pytest.raises(ValueError, match=r"`params\['out'\]` has an unexpected key 'bais'"):
        jax.jit(F.multi_head_attention)(bad_out, x)


def test_init_checks_key_and_numpy_sizes(key):
    with pytest.raises(TypeError, match=r"multi_head_attention_init: `key` must be a PRNG key"):
        F.multi_head_attention_init(None, 8, num_heads=2)
    with pytest.raises(ValueError, match=r"multi_head_attention_init: `features` must be a pos"):
        F.multi_head_attention_init(key, 0, num_heads=2)
    p = F.multi_head_attention_init(key, np.int64(8), num_heads=np.int32(2))
    assert p["query"]["kernel"].shape == (8, 2, 4)


@pytest.mark.slow
def test_checked_attention_runs_under_jit_with_a_traced_rate():
    p = jax.tree.map(jnp.asarray, _params())
    x = jax.random.normal(jax.random.key(1), (B, T, E))
    k = jax.random.key(2)
    traced = jax.jit(lambda r: F.multi_head_attention(p, x, dropout_rate=r, key=k))(0.25)
    eager = F.multi_head_attention(p, x, dropout_rate=0.25, key=k)
    # outputs up to ~11: an element near 0 carries their float32 rounding (1.5e-6, a Zen 3)
    np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-5)
