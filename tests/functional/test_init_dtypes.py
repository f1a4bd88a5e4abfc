"""Every public ``F.*_init`` refuses a non-floating ``dtype`` under its own name.

Before this check a non-floating dtype was refused only deep inside
``nnjax.initializers.init_param`` (the message named ``init_param``, not the init the
user called), complex dtypes went through, ``embedding_init``'s default draw cast its
table to integers, and ``transformer_encoder_block_init``'s error named
``layer_norm_init``. The normalisation inits are covered by ``test_norm_dtypes.py``.
"""

import jax
import jax.numpy as jnp
import pytest

import nnjax.functional as F

from .test_norm_dtypes import INITS as NORM_INITS

KEY = jax.random.key(0)


def _bidirectional(dtype, **kw):
    return F.bidirectional_init(KEY, F.lstm_cell_init, 3, 4, dtype=dtype, **kw)


# name -> init(dtype, **extra keyword arguments such as kernel_init)
INITS = {
    "dense_init": lambda dt, **kw: F.dense_init(KEY, 3, 4, dtype=dt, **kw),
    "conv1d_init": lambda dt, **kw: F.conv1d_init(KEY, 2, 4, 3, dtype=dt, **kw),
    "conv2d_init": lambda dt, **kw: F.conv2d_init(KEY, 2, 4, 3, dtype=dt, **kw),
    "conv3d_init": lambda dt, **kw: F.conv3d_init(KEY, 2, 4, 3, dtype=dt, **kw),
    "conv_transpose1d_init": lambda dt, **kw: F.conv_transpose1d_init(KEY, 2, 4, 3, dtype=dt, **kw),
    "conv_transpose2d_init": lambda dt, **kw: F.conv_transpose2d_init(KEY, 2, 4, 3, dtype=dt, **kw),
    "conv_transpose3d_init": lambda dt, **kw: F.conv_transpose3d_init(KEY, 2, 4, 3, dtype=dt, **kw),
    "embedding_init": lambda dt, **kw: F.embedding_init(
        KEY, 10, 4, dtype=dt, embedding_init=kw.get("kernel_init")
    ),
    "rnn_cell_init": lambda dt, **kw: F.rnn_cell_init(KEY, 3, 4, dtype=dt, **kw),
    "lstm_cell_init": lambda dt, **kw: F.lstm_cell_init(KEY, 3, 4, dtype=dt, **kw),
    "gru_cell_init": lambda dt, **kw: F.gru_cell_init(KEY, 3, 4, dtype=dt, **kw),
    "multi_head_attention_init": lambda dt, **kw: F.multi_head_attention_init(
        KEY, 8, num_heads=2, dtype=dt, **kw
    ),
    "transformer_encoder_block_init": lambda dt, **kw: F.transformer_encoder_block_init(
        KEY, 8, num_heads=2, dtype=dt, **kw
    ),
    "bidirectional_init": _bidirectional,
}

REFUSED = [
    (jnp.int32, "int32"),
    (jnp.uint8, "uint8"),
    (bool, "bool"),
    (jnp.bool_, "bool"),
    (jnp.complex64, "complex64"),
    ("no dtype", "'no dtype'"),
    (None, "None"),
]


def test_the_tables_cover_every_public_init():
    public = {name for name in F.__all__ if name.endswith("_init")}
    assert public == set(INITS) | set(NORM_INITS)


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize("dtype, shown", REFUSED)
def test_a_non_floating_dtype_is_refused_under_the_inits_own_name(name, dtype, shown):
    with pytest.raises(
        TypeError,
        match=rf"^{name}: `dtype` must be a floating dtype such as jnp.float32, got {shown}$",
    ):
        INITS[name](dtype)


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.complex64])
def test_the_dtype_is_checked_before_anything_is_drawn(name, dtype):
    calls = []

    def spy(key, shape, dtype=jnp.float32):
        calls.append(shape)
        return jnp.zeros(shape, dtype)

    with pytest.raises(TypeError, match=rf"^{name}: `dtype`"):
        INITS[name](dtype, kernel_init=spy)
    assert calls == []


@pytest.mark.parametrize("name", list(INITS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, "float32"])
def test_floating_dtypes_give_parameters_of_that_dtype(name, dtype):
    leaves = jax.tree.leaves(INITS[name](dtype))
    assert leaves and all(leaf.dtype == jnp.dtype(dtype) for leaf in leaves)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)


def test_the_default_embedding_table_stays_a_scaled_normal_draw():
    table = F.embedding_init(KEY, 1000, 16)["embedding"]
    assert table.dtype == jnp.float32
    assert abs(float(jnp.std(table)) - 0.25) < 0.01  # N(0, 1 / D), D = 16


def test_bidirectional_init_without_a_dtype_uses_the_cells_default():
    params = F.bidirectional_init(KEY, F.gru_cell_init, 3, 4)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
