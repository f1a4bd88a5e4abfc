"""Every batched functional layer takes an empty batch, eagerly and under ``jit``.

An empty batch (``B == 0``, the tail of a dataset split by a filter, an empty shard)
gives an empty output of the right shape and dtype, and zero gradients. Before this test
the transposed convolutions' sub-pixel formulation raised ``ZeroDivisionError`` from a
``reshape(..., -1)`` of an empty array. ``batch_norm`` in training mode refuses an empty
batch on purpose (``test_normalization.py``).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F

KEY = jax.random.key(0)


def _conv(fn, init, nd, **kw):
    groups = kw.get("feature_group_count", 1)
    params = init(KEY, 6, 4 * groups, 3, feature_group_count=groups)
    return lambda p, x: fn(p, x, **kw), params, (*(5,) * nd, 6)


def _conv_transpose(fn, init, nd, **kw):
    groups = kw.get("feature_group_count", 1)
    params = init(KEY, 6, 3 * groups, 3, feature_group_count=groups)
    return lambda p, x: fn(p, x, **kw), params, (*(5,) * nd, 6)


CONVS = {1: (F.conv1d, F.conv1d_init), 2: (F.conv2d, F.conv2d_init), 3: (F.conv3d, F.conv3d_init)}
TRANSPOSED = {
    1: (F.conv_transpose1d, F.conv_transpose1d_init),
    2: (F.conv_transpose2d, F.conv_transpose2d_init),
    3: (F.conv_transpose3d, F.conv_transpose3d_init),
}

# name -> a builder of (fn(params, x), params, the shape of one example); built in the
# test, not at import (the parameters' initializers compile: 8 s of each test process's
# collection when they ran here)
CASES = {
    "dense": lambda: (F.dense, F.dense_init(KEY, 6, 4), (6,)),
    **{f"conv{nd}d": functools.partial(_conv, *CONVS[nd], nd) for nd in CONVS},
    "conv2d_stride2": functools.partial(_conv, *CONVS[2], 2, stride=2),
    "conv2d_depthwise": functools.partial(_conv, *CONVS[2], 2, feature_group_count=6),
    **{
        f"conv_transpose{nd}d": functools.partial(_conv_transpose, *TRANSPOSED[nd], nd, stride=2)
        for nd in TRANSPOSED
    },
    "conv_transpose2d_grouped": functools.partial(
        _conv_transpose, *TRANSPOSED[2], 2, stride=2, feature_group_count=3
    ),
    "lstm": lambda: (lambda p, x: F.lstm(p, x)[1], F.lstm_cell_init(KEY, 3, 5), (7, 3)),
    "gru": lambda: (lambda p, x: F.gru(p, x)[1], F.gru_cell_init(KEY, 3, 5), (7, 3)),
    "bidirectional": lambda: (
        lambda p, x: F.bidirectional(F.lstm_cell, p, x)[1],
        F.bidirectional_init(KEY, F.lstm_cell_init, 3, 5),
        (7, 3),
    ),
    "multi_head_attention": lambda: (
        lambda p, x: F.multi_head_attention(p, x, causal=True),
        F.multi_head_attention_init(KEY, 8, num_heads=2),
        (5, 8),
    ),
    "transformer_encoder_block": lambda: (
        F.transformer_encoder_block,
        F.transformer_encoder_block_init(KEY, 8, num_heads=2),
        (5, 8),
    ),
    "layer_norm": lambda: (F.layer_norm, F.layer_norm_init(KEY, 8), (8,)),
    "rms_norm": lambda: (F.rms_norm, F.rms_norm_init(KEY, 8), (8,)),
    "group_norm": lambda: (
        lambda p, x: F.group_norm(p, x, num_groups=2),
        F.group_norm_init(KEY, 8),
        (4, 4, 8),
    ),
    "batch_norm_eval": lambda: (
        lambda p, x: F.batch_norm(p, F.batch_norm_init(KEY, 8)[1], x, training=False)[0],
        F.batch_norm_init(KEY, 8)[0],
        (8,),
    ),
    "prelu": lambda: (F.prelu, F.prelu_init(KEY), (8,)),
    "attend": lambda: (F.attend, F.embedding_init(KEY, 10, 8), (8,)),
    "max_pool2d": lambda: (lambda p, x: F.max_pool2d(x, 2), {}, (6, 6, 3)),
    "avg_pool3d_same": lambda: (lambda p, x: F.avg_pool3d(x, 2, padding="SAME"), {}, (5, 5, 5, 3)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_empty_batch(name):
    fn, params, example = CASES[name]()
    one = jax.eval_shape(fn, params, jax.ShapeDtypeStruct((2, *example), jnp.float32))
    x = jnp.zeros((0, *example))
    for y in (fn(params, x), jax.jit(fn)(params, x)):
        assert y.shape == (0, *one.shape[1:]) and y.dtype == one.dtype
    grads = jax.jit(jax.grad(lambda p: jnp.sum(fn(p, x))))(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params)):
        assert g.shape == p.shape
        np.testing.assert_array_equal(g, np.zeros_like(p))
