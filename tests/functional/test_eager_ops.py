"""Eager calls of the normalisations and of attention run as one program each.

Op by op (``_eager.one_program``), an eager ``F.layer_norm`` took 0.27 s at its first
call and 1 ms at each later one, ``F.multi_head_attention`` 0.9 s and 8 ms (2-core
Xeon); as one program 0.07 s and 0.4 ms, 0.17 s and 1 ms. A program is compiled per
shape: another ``epsilon`` or mask is an argument, not a new program.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F
from nnjax.functional import _eager

KEY = jax.random.key(0)


@pytest.fixture(autouse=True)
def _fresh_programs():
    """Each test's first call compiles here, whatever ran before in this process."""
    _eager._program.cache_clear()


# name -> (op(params, x, epsilon), params, x's shape)
NORMS = {
    "layer_norm": (
        lambda p, x, e: F.layer_norm(p, x, epsilon=e),
        F.layer_norm_init(KEY, 6),
        (3, 6),
    ),
    "rms_norm": (lambda p, x, e: F.rms_norm(p, x, epsilon=e), F.rms_norm_init(KEY, 6), (3, 6)),
    "group_norm": (
        lambda p, x, e: F.group_norm(p, x, num_groups=3, epsilon=e),
        F.group_norm_init(KEY, 6),
        (2, 4, 4, 6),
    ),
    "instance_norm": (
        lambda p, x, e: F.instance_norm(p, x, epsilon=e),
        F.instance_norm_init(KEY, 6),
        (2, 4, 6),
    ),
}


@pytest.mark.parametrize("name", sorted(NORMS))
@pytest.mark.slow
def test_an_eager_call_is_one_program_per_shape(name, logged_compiles):
    op, params, shape = NORMS[name]
    params = jax.tree.map(lambda a: a + 0.5, params)  # not the identity affine
    x = jax.random.normal(KEY, shape)
    with logged_compiles() as compiled:
        first = op(params, x, 1e-5)
    assert len(compiled) == 1, compiled  # one program (op by op: one per op)
    shifted, short = x + 1.0, x[:1]
    with logged_compiles() as compiled:
        again, other_eps = op(params, shifted, 1e-5), op(params, x, 0.5)
        op(params, short, 1e-5)
    assert len(compiled) == 1, compiled  # only the new shape
    jitted = jax.jit(op)
    for got, arg, eps in ((first, x, 1e-5), (again, shifted, 1e-5), (other_eps, x, 0.5)):
        np.testing.assert_allclose(got, jitted(params, arg, eps), rtol=1e-6, atol=1e-6)
    with jax.disable_jit():  # op by op, as before
        np.testing.assert_allclose(first, op(params, x, 1e-5), rtol=1e-5, atol=1e-6)
    # traced calls run the ops: gradients as jitted
    grad = lambda p: jax.grad(lambda p: jnp.sum(op(p, x, 1e-5) ** 2))(p)["scale"]
    np.testing.assert_allclose(grad(params), jax.jit(grad)(params), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_an_eager_attention_is_one_program_and_dropout_stays_op_by_op(logged_compiles):
    params = F.multi_head_attention_init(KEY, 8, num_heads=2)
    x, context = jax.random.normal(KEY, (2, 5, 8)), jax.random.normal(KEY, (2, 3, 8))
    masks = jnp.ones((2, 3), bool), jnp.array([[1, 1, 0], [1, 0, 1]], bool)
    fn = lambda p, x, c, m, causal: F.multi_head_attention(p, x, c, mask=m, causal=causal)
    with logged_compiles() as compiled:
        first = fn(params, x, context, masks[0], False)
    assert len(compiled) == 1, compiled  # one program (op by op: one per op)
    with logged_compiles() as compiled:
        other_mask = fn(params, x, context, masks[1], False)
    assert len(compiled) == 0, compiled
    jitted = jax.jit(fn, static_argnames="causal")
    for got, mask in ((first, masks[0]), (other_mask, masks[1])):
        np.testing.assert_allclose(got, jitted(params, x, context, mask, False), atol=1e-6)
    self_causal = F.multi_head_attention(params, x, causal=True)
    np.testing.assert_allclose(self_causal, jitted(params, x, x, None, True), atol=1e-6)
    dropped = F.multi_head_attention(params, x, dropout_rate=0.5, key=jax.random.key(1))
    assert not np.allclose(dropped, F.multi_head_attention(params, x))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_an_eager_transformer_block_is_one_program_with_a_named_activation(logged_compiles):
    params = F.transformer_encoder_block_init(KEY, 8, num_heads=2)
    x = jax.random.normal(KEY, (2, 5, 8))
    with logged_compiles() as compiled:
        first = F.transformer_encoder_block(params, x, causal=True)
    assert len(compiled) == 1, compiled
    with logged_compiles() as compiled:
        F.transformer_encoder_block(params, x, causal=True)
    assert compiled == []
    jitted = jax.jit(F.transformer_encoder_block, static_argnames="causal")
    np.testing.assert_allclose(first, jitted(params, x, causal=True), atol=1e-6)
    # a callable activation (maybe a new lambda at each call) runs op by op, the same
    custom = F.transformer_encoder_block(params, x, causal=True, activation=jax.nn.gelu)
    np.testing.assert_allclose(custom, first, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"transformer_encoder_block: `epsilon` must be > 0, got -1\.0"
    ):
        F.transformer_encoder_block(params, x, epsilon=-1.0)
