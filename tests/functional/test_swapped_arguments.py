"""An op called with its input and its parameters swapped names both, before it computes.

``F.dense(x, params)`` said "`params` must be a dict of arrays, got ArrayImpl", and
``F.layer_norm``, ``F.lstm``, ``F.gru``, ``F.batch_norm`` and ``F.attend`` failed inside
NumPy ("entry not a 2- or 3- tuple") converting the parameter dict to an array.
"""

import jax
import jax.numpy as jnp
import pytest

import nnjax.functional as F

KEY = jax.random.key(0)
ARRAY_FIRST = (
    r"`params` must be a dict of arrays, got an array of shape \(2, .*; `params` comes first"
)
DICT_SECOND = r"`xs?` must be an array, got a dict with keys \[.*\]; parameter dicts come before"

# name -> (the call with the arguments swapped, the message it must give)
CASES = {
    "dense": (lambda: F.dense(jnp.ones((2, 8)), F.dense_init(KEY, 8, 4)), ARRAY_FIRST),
    "conv2d": (
        lambda: F.conv2d(jnp.ones((2, 5, 5, 3)), F.conv2d_init(KEY, 3, 4, 3)),
        ARRAY_FIRST,
    ),
    "conv_transpose1d": (
        lambda: F.conv_transpose1d(jnp.ones((2, 5, 3)), F.conv_transpose1d_init(KEY, 3, 4, 3)),
        ARRAY_FIRST,
    ),
    "multi_head_attention": (
        lambda: F.multi_head_attention(
            jnp.ones((2, 5, 8)), F.multi_head_attention_init(KEY, 8, num_heads=2)
        ),
        ARRAY_FIRST,
    ),
    "transformer_encoder_block": (
        lambda: F.transformer_encoder_block(
            jnp.ones((2, 5, 8)), F.transformer_encoder_block_init(KEY, 8, num_heads=2)
        ),
        ARRAY_FIRST,
    ),
    "embedding": (
        lambda: F.embedding(jnp.zeros((2, 3), jnp.int32), F.embedding_init(KEY, 10, 8)),
        ARRAY_FIRST,
    ),
    "attend": (lambda: F.attend(jnp.ones((2, 8)), F.embedding_init(KEY, 10, 8)), ARRAY_FIRST),
    "prelu": (lambda: F.prelu(jnp.ones((2, 8)), F.prelu_init(KEY)), ARRAY_FIRST),
    "bidirectional": (
        lambda: F.bidirectional(
            F.lstm_cell, jnp.ones((2, 5, 3)), F.bidirectional_init(KEY, F.lstm_cell_init, 3, 4)
        ),
        ARRAY_FIRST,
    ),
    "layer_norm": (lambda: F.layer_norm(jnp.ones((2, 8)), F.layer_norm_init(KEY, 8)), DICT_SECOND),
    "rms_norm": (lambda: F.rms_norm(jnp.ones((2, 8)), F.rms_norm_init(KEY, 8)), DICT_SECOND),
    "group_norm": (
        lambda: F.group_norm(jnp.ones((2, 3, 3, 8)), F.group_norm_init(KEY, 8), num_groups=2),
        DICT_SECOND,
    ),
    "batch_norm": (
        lambda: F.batch_norm(jnp.ones((2, 8)), *F.batch_norm_init(KEY, 8), training=True),
        DICT_SECOND,
    ),
    "lstm": (lambda: F.lstm(jnp.ones((2, 5, 3)), F.lstm_cell_init(KEY, 3, 4)), DICT_SECOND),
    "gru": (lambda: F.gru(jnp.ones((2, 5, 3)), F.gru_cell_init(KEY, 3, 4)), DICT_SECOND),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_swapped_arguments_are_named(name):
    call, match = CASES[name]
    with pytest.raises(TypeError, match=f"^{name}: {match}"):
        call()


def test_none_as_the_input_is_named():
    with pytest.raises(TypeError, match=r"^dense: `x` must be an array, got None$"):
        F.dense(F.dense_init(KEY, 8, 4), None)
