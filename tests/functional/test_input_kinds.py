"""What the functional ops make of inputs that are not JAX arrays.

Object arrays (pandas' ``.values`` of mixed columns), ragged lists and strings raise
errors that name the op, the argument and what was passed; PyTorch tensors are read as
``fit`` reads them (detached, bfloat16 kept).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.functional as F

KEY = jax.random.key(0)
OBJECT_ROW = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=object)  # pandas .values, mixed columns


def _lstm_state():
    return F.LSTMState(jnp.zeros((1, 2)), jnp.zeros((1, 2)))


#: op name -> (call taking the input, a float32 input it accepts).
OPS = {
    "dense": (lambda x: F.dense(F.dense_init(KEY, 4, 2), x), np.ones((1, 4), np.float32)),
    "conv2d": (lambda x: F.conv2d(F.conv2d_init(KEY, 4, 2, 1), x), np.ones((1, 1, 1, 4))),
    "layer_norm": (lambda x: F.layer_norm(F.layer_norm_init(KEY, 4), x), np.ones((1, 4))),
    "rms_norm": (lambda x: F.rms_norm(F.rms_norm_init(KEY, 4), x), np.ones((1, 4))),
    "max_pool2d": (lambda x: F.max_pool2d(x, 1), np.ones((1, 1, 1, 4))),
    "global_avg_pool": (F.global_avg_pool, np.ones((1, 1, 4))),
    "dropout": (lambda x: F.dropout(KEY, x, 0.5), np.ones((1, 4))),
    "attend": (lambda x: F.attend(F.embedding_init(KEY, 3, 4), x), np.ones((1, 4))),
    "prelu": (lambda x: F.prelu(F.prelu_init(KEY, 4), x), np.ones((1, 4))),
    "lstm_cell": (
        lambda x: F.lstm_cell(F.lstm_cell_init(KEY, 4, 2), _lstm_state(), x),
        np.ones((1, 4)),
    ),
    "lstm": (lambda xs: F.lstm(F.lstm_cell_init(KEY, 4, 2), xs), np.ones((1, 1, 4))),
}


def _shaped(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    return values.reshape(like.shape)


@pytest.mark.parametrize("op", sorted(OPS))
def test_an_object_array_names_the_op_and_says_how_to_convert(op):
    call, like = OPS[op]
    name = "xs" if op == "lstm" else "x"
    match = (
        rf"^{op}: `{name}` must be a numeric array, got a NumPy array of dtype object "
        rf"\(convert it, e\.g\. {name}\.astype\(np\.float32\)\)$"
    )
    with pytest.raises(TypeError, match=match):
        call(_shaped(OBJECT_ROW, like))
    assert call(_shaped(OBJECT_ROW.astype(np.float32), like)) is not None  # the fix works


@pytest.mark.parametrize("op", ["dense", "layer_norm", "conv2d", "lstm"])
def test_strings_and_ragged_lists_name_the_op(op):
    call, like = OPS[op]
    name = "xs" if op == "lstm" else "x"
    with pytest.raises(TypeError, match=rf"^{op}: `{name}` must be a numeric array, got the str"):
        call("1.0 2.0 3.0 4.0")
    strings = np.array(["1", "2", "3", "4"]).reshape(like.shape)
    with pytest.raises(TypeError, match=rf"^{op}: `{name}` .* NumPy array of strings, dtype <U1"):
        call(strings)
    with pytest.raises(ValueError, match=rf"^{op}: `{name}` .* got a ragged list .* pad them"):
        call([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]])


def test_a_mixed_list_names_its_dtype_and_a_conversion():
    dense = OPS["dense"][0]
    message = "got a list of strings, dtype <U32 (convert it, e.g. np.asarray(x, np.float32))"
    with pytest.raises(TypeError, match=re.escape(message)):
        dense([[1.0, "n/a", 2.0, 3.0]])


@pytest.mark.parametrize("op", ["dense", "lstm_cell", "lstm"])
def test_torch_tensors_are_read_detached_and_bfloat16_kept(op):
    torch = pytest.importorskip("torch")
    call, like = OPS[op]
    values = np.arange(4.0, dtype=np.float32).reshape(like.shape) / 4
    want = jax.tree.leaves(call(values))
    grad = torch.tensor(values, requires_grad=True)  # numpy() would refuse it
    for got, ref in zip(jax.tree.leaves(call(grad)), want):
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-6, atol=1e-7)
    half = torch.tensor(values).to(torch.bfloat16).requires_grad_(True)
    out = jax.tree.leaves(call(half))
    assert all(o.dtype == jnp.bfloat16 for o in out)  # computes in the tensor's dtype
    want16 = jax.tree.leaves(call(values.astype(jnp.bfloat16)))
    for got, ref in zip(out, want16):
        np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(ref, np.float32))


def test_jitted_and_numpy_inputs_are_unchanged():
    dense, like = OPS["dense"]
    x = jnp.asarray(like)
    np.testing.assert_array_equal(jax.jit(dense)(x), dense(like))
    np.testing.assert_array_equal(dense(like.tolist()), dense(like))


def _attention(**kw):
    params = F.multi_head_attention_init(KEY, 4, num_heads=2)
    return F.multi_head_attention(params, jnp.ones((1, 3, 4)), **kw)


def _block(**kw):
    params = F.transformer_encoder_block_init(KEY, 4, num_heads=2)
    return F.transformer_encoder_block(params, jnp.ones((1, 3, 4)), **kw)


def _batch_norm(**kw):
    params, stats = F.batch_norm_init(KEY, 4)
    return F.batch_norm(params, stats, jnp.ones((2, 4)), training=True, **kw)


#: (op, call, argument, an object array of the argument's shape, the dtype to convert to)
SIDE_INPUTS = [
    ("multi_head_attention", lambda v: _attention(mask=v), "mask", np.ones((1, 3)), "bool_"),
    (
        "multi_head_attention",
        lambda v: _attention(context=v),
        "context",
        np.ones((1, 2, 4)),
        "float32",
    ),
    ("transformer_encoder_block", lambda v: _block(mask=v), "mask", np.ones((1, 3)), "bool_"),
    ("batch_norm", lambda v: _batch_norm(mask=v), "mask", np.ones(2), "bool_"),
    (
        "rotary_position_encoding",
        lambda v: F.rotary_position_encoding(jnp.ones((1, 3, 4)), v),
        "positions",
        np.arange(3),
        "int32",
    ),
]


@pytest.mark.parametrize(
    "op, call, name, like, dtype", SIDE_INPUTS, ids=[c[0] + "-" + c[2] for c in SIDE_INPUTS]
)
def test_object_masks_positions_and_contexts_name_the_argument(op, call, name, like, dtype):
    values = like.astype(object)
    match = rf"^{op}: `{name}` must be a numeric array, got a NumPy array of dtype object"
    with pytest.raises(TypeError, match=match + rf".*{name}\.astype\(np\.{dtype}\)"):
        call(values)
    assert call(like.astype(dtype)) is not None  # the converted value is taken
