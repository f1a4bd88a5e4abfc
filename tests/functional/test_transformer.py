"""Tests for transformer_encoder_block (vs torch.nn.TransformerEncoderLayer) and the
sinusoidal and rotary position encodings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._compare import assert_matches_torch
from ._torch_ref import rand, torch
from ._transforms import assert_transforms
from .test_attention import torch_mha_params

B, T, E, HEADS, MLP = 2, 4, 6, 2, 8


def _params(seed=0):
    shapes = jax.tree.map(
        jnp.shape,
        F.transformer_encoder_block_init(jax.random.key(0), E, num_heads=HEADS, mlp_features=MLP),
    )
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
    return jax.tree.unflatten(treedef, [rand(s, seed + i) for i, s in enumerate(leaves)])


def _torch_block(p, x, key_padding=None, causal=False):
    layer = torch.nn.TransformerEncoderLayer(
        E, HEADS, MLP, dropout=0.0, activation="relu", batch_first=True, norm_first=True
    )
    layer = layer.to(x.dtype).eval()
    state = {f"self_attn.{n}": v for n, v in torch_mha_params(p["attention"]).items()}
    for ours, theirs in (("norm1", "norm1"), ("norm2", "norm2")):
        state[f"{theirs}.weight"] = p[ours]["scale"]
        state[f"{theirs}.bias"] = p[ours]["bias"]
    for ours, theirs in (("mlp_in", "linear1"), ("mlp_out", "linear2")):
        state[f"{theirs}.weight"] = p[ours]["kernel"].T
        state[f"{theirs}.bias"] = p[ours]["bias"]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None
    kwargs = {"src_mask": mask, "src_key_padding_mask": key_padding, "is_causal": causal}
    return torch.func.functional_call(layer, state, (x,), kwargs)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize(("padding", "causal"), [(False, False), (True, True)])
def test_block_matches_torch_encoder_layer(padding, causal):
    keep = np.array([[True] * T, [True, False, True, False]])
    mask = keep if padding else None
    fn = lambda p, x: F.transformer_encoder_block(
        p, x, mask=mask, causal=causal, activation="relu", epsilon=1e-5
    )
    kp = torch.from_numpy(~keep) if padding else None
    torch_fn = lambda p, x: _torch_block(p, x, kp, causal)
    assert_matches_torch(fn, torch_fn, (_params(), 1.0 + rand((B, T, E), 20)))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_block_dropout_needs_key_and_changes_output(key):
    params = F.transformer_encoder_block_init(key, E, num_heads=HEADS)
    x = jax.random.normal(key, (B, T, E))
    with pytest.raises(ValueError, match=r"transformer_encoder_block: `dropout_rate`=0.5 needs"):
        F.transformer_encoder_block(params, x, dropout_rate=0.5)
    a = F.transformer_encoder_block(params, x, dropout_rate=0.5, key=jax.random.key(1))
    b = F.transformer_encoder_block(params, x, dropout_rate=0.5, key=jax.random.key(2))
    assert not np.allclose(a, b)
    np.testing.assert_allclose(
        F.transformer_encoder_block(params, x, dropout_rate=0.0, key=jax.random.key(1)),
        F.transformer_encoder_block(params, x), rtol=1e-6, atol=1e-6,
    )  # fmt: skip


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_block_check_grads_and_transforms(key):
    with jax.enable_x64(True):
        fn = lambda p, x: F.transformer_encoder_block(p, x, causal=True)
        check_grads(jax.jit(fn), (_params(), rand((1, 2, E), 1)), order=1, modes=("rev",))
    params = F.transformer_encoder_block_init(key, E, num_heads=HEADS, mlp_features=MLP)
    assert_transforms(lambda p, x: F.transformer_encoder_block(p, x, causal=True),
                      params, jax.random.normal(key, (B, T, E)))  # fmt: skip


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_block_in_float16(key):
    """float16 runs on the CPU too, jitted (its attention takes the explicit path there)."""
    params = F.transformer_encoder_block_init(key, E, num_heads=HEADS, mlp_features=MLP)
    x = jax.random.normal(key, (B, T, E))
    fn = lambda p, x: F.transformer_encoder_block(p, x, causal=True)
    args = jax.tree.map(lambda a: a.astype(jnp.float16), (params, x))
    for half in (fn(*args), jax.jit(fn)(*args)):  # jitted, XLA:CPU refused it before
        assert half.dtype == jnp.float16
        np.testing.assert_allclose(
            np.asarray(half, np.float32), fn(params, x), rtol=2e-2, atol=2e-2
        )


# --------------------------------------------------------------------------- positions


def test_sinusoidal_matches_the_paper_formula():
    table = F.sinusoidal_position_encoding(7, 6)
    pos, i = np.arange(7)[:, None], np.arange(3)[None, :]
    angle = pos / 10000.0 ** (2 * i / 6)
    np.testing.assert_allclose(table[:, 0::2], np.sin(angle), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table[:, 1::2], np.cos(angle), rtol=1e-5, atol=1e-6)
    assert F.sinusoidal_position_encoding(3, 4, dtype=jnp.bfloat16).dtype == jnp.bfloat16


def _rope_reference(x, positions, base=10000.0):
    """Complex-number form: pair (x_i, x_{i+D/2}) is z_i, rotated by exp(i p theta_i)."""
    d = x.shape[-1]
    theta = base ** (-np.arange(0, d, 2) / d)
    z = x[..., : d // 2] + 1j * x[..., d // 2 :]
    angle = positions[:, :, None, None] * theta  # (B, T, 1, D/2)
    z = z * np.exp(1j * angle)
    return np.concatenate([z.real, z.imag], axis=-1)


def test_rotary_matches_complex_rotation_and_is_relative():
    x = rand((2, 5, 3, 4), 1)
    positions = np.array([[0, 1, 2, 3, 4], [3, 5, 7, 9, 11]])
    with jax.enable_x64(True):
        got = F.rotary_position_encoding(x, positions)
        default = F.rotary_position_encoding(x)
        q = F.rotary_position_encoding(np.broadcast_to(x[:1, :1], (1, 5, 3, 4)))
        k = F.rotary_position_encoding(np.broadcast_to(x[:1, 1:2], (1, 5, 3, 4)))
    np.testing.assert_allclose(got, _rope_reference(x, positions), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(default[0], got[0], rtol=1e-12, atol=1e-12)
    # <q_m, k_n> depends on m - n only: (1, 0) and (4, 3) give the same score.
    score = lambda m, n: np.sum(np.asarray(q)[0, m] * np.asarray(k)[0, n], axis=-1)
    np.testing.assert_allclose(score(1, 0), score(4, 3), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_rotary_transforms_and_errors(key):
    x = jax.random.normal(key, (2, 3, 2, 4))
    assert_transforms(F.rotary_position_encoding, x)
    with pytest.raises(ValueError, match=r"rotary_position_encoding: `x.shape\[-1\]` must be"):
        F.rotary_position_encoding(jnp.ones((1, 3, 2, 5)))
    with pytest.raises(AssertionError, match=r"argument `positions` has shape \(4,\)"):
        F.rotary_position_encoding(x, jnp.arange(4))
    with pytest.raises(ValueError, match=r"sinusoidal_position_encoding: `features` must be"):
        F.sinusoidal_position_encoding(4, 3)
    with pytest.raises(TypeError, match=r"sinusoidal_position_encoding: `dtype` must be a float"):
        F.sinusoidal_position_encoding(3, 4, dtype=jnp.int32)  # was a table of 0s and 1s


def test_block_errors_name_the_block_and_its_arguments(key):
    params = F.transformer_encoder_block_init(key, E, num_heads=HEADS, mlp_features=MLP)
    x = jnp.ones((B, T, E))
    op = "transformer_encoder_block"
    with pytest.raises(ValueError, match=rf"{op}: `dropout_rate` must be in \[0, 1\], got -0.1"):
        F.transformer_encoder_block(params, x, dropout_rate=-0.1, key=key)
    with pytest.raises(TypeError, match=rf"{op}: `key` must be a PRNG key .*got 0"):
        F.transformer_encoder_block(params, x, dropout_rate=0.1, key=0)
    with pytest.raises(ValueError, match=rf"{op}: `epsilon` must be > 0, got 0.0"):
        F.transformer_encoder_block(params, x, epsilon=0.0)  # was named as layer_norm's
    with pytest.raises(KeyError, match=rf"{op}: `params` has no key 'norm2'"):
        F.transformer_encoder_block({k: v for k, v in params.items() if k != "norm2"}, x)
    for fn in (F.transformer_encoder_block, jax.jit(F.transformer_encoder_block)):
        with pytest.raises(
            AssertionError,
            match=rf"{op}: argument `x` has shape \(2, 4, 5\), expected \(\*, \*, 6\)",
        ):
            fn(params, jnp.ones((B, T, 5)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mlp_features": 0}, r"`mlp_features` must be a positive int, got 0"),
        ({"num_heads": 4}, r"`num_heads`=4 does not divide `features`=6"),
        ({"num_heads": 0}, r"`num_heads` must be a positive int, got 0"),
    ],
)
def test_block_init_names_its_own_arguments(key, kwargs, match):
    with pytest.raises(ValueError, match=rf"transformer_encoder_block_init: {match}"):
        F.transformer_encoder_block_init(key, E, **({"num_heads": HEADS} | kwargs))
    with pytest.raises(TypeError, match=r"transformer_encoder_block_init: `key` must be a PRNG"):
        F.transformer_encoder_block_init(0, E, num_heads=HEADS)


@pytest.mark.slow
def test_checked_block_runs_under_jit_with_dropout(key):
    params = F.transformer_encoder_block_init(key, E, num_heads=HEADS, mlp_features=MLP)
    x = jax.random.normal(key, (B, T, E))
    k = jax.random.key(3)
    fn = jax.jit(lambda p, x, r: F.transformer_encoder_block(p, x, dropout_rate=r, key=k))
    np.testing.assert_allclose(
        fn(params, x, 0.2), F.transformer_encoder_block(params, x, dropout_rate=0.2, key=k),
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip


def test_sinusoidal_static_arguments():
    with pytest.raises(
        ValueError,
        match=r"sinusoidal_position_encoding: `length`.*traced.*static_argnames='length'",
    ):
        jax.jit(F.sinusoidal_position_encoding)(10, 8)
    fn = jax.jit(F.sinusoidal_position_encoding, static_argnums=(0, 1))
    np.testing.assert_allclose(fn(np.int64(3), np.int64(4)), F.sinusoidal_position_encoding(3, 4))
    with pytest.raises(ValueError, match=r"`length` must be a non-negative int, got True"):
        F.sinusoidal_position_encoding(True, 4)
