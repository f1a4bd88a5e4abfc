import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import GRU, LSTM, RNN

from ._helpers import assert_jit_traces_once, assert_params_match

RNN_CASE = (RNN, F.rnn_cell_init, functools.partial(F.rnn, F.rnn_cell))
GRU_CASE = (GRU, F.gru_cell_init, functools.partial(F.rnn, F.gru_cell))
# The reference for the LSTM layer (which runs the fast path F.lstm) is the scanned cell.
LSTM_CASE = (LSTM, F.lstm_cell_init, functools.partial(F.rnn, F.lstm_cell))


@pytest.mark.parametrize(
    ("cls", "init", "run", "reverse"),
    [(*RNN_CASE, False), (*GRU_CASE, True), (*LSTM_CASE, False), (*LSTM_CASE, True)],
)
def test_matches_scanned_cell(cls, init, run, reverse):
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
    layer = cls(3, 4, return_sequences=True, return_state=True, reverse=reverse, rngs=nnx.Rngs(0))
    params = init(nnx.Rngs(0).params(), 3, 4)
    assert_params_match(layer, params)
    ys, final = layer(xs)
    final_ref, ys_ref = run(params, xs, reverse=reverse)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(final_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    last = cls(3, 4, reverse=reverse, rngs=nnx.Rngs(0))(xs)
    np.testing.assert_allclose(last, ys_ref[:, 0 if reverse else -1], rtol=1e-5, atol=1e-6)


def test_initial_state_is_used():
    xs = jnp.ones((2, 3, 3))
    layer = GRU(3, 4, rngs=nnx.Rngs(0))
    h0 = jnp.full((2, 4), 0.5)
    _, ys_ref = F.rnn(F.gru_cell, layer.params(), xs, h0)
    np.testing.assert_allclose(layer(xs, h0), ys_ref[:, -1], rtol=1e-6, atol=1e-6)
    state = F.LSTMState(h0, -h0)
    lstm = LSTM(3, 4, rngs=nnx.Rngs(0))
    _, ys_ref = F.lstm(lstm.params(), xs, state)
    np.testing.assert_allclose(lstm(xs, state), ys_ref[:, -1], rtol=1e-6, atol=1e-6)


def test_mixed_precision_and_errors():
    layer = LSTM(3, 4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert layer(jnp.ones((2, 3, 3))).dtype == jnp.bfloat16
    assert layer.w_x[...].dtype == jnp.float32
    with pytest.raises(ValueError, match="GRU: `hidden_features`"):
        GRU(3, 0, rngs=nnx.Rngs(0))
    with pytest.raises(AssertionError, match="rank"):
        RNN(3, 4, rngs=nnx.Rngs(0))(jnp.ones((2, 3)))


def test_jit_does_not_retrace():
    assert_jit_traces_once(LSTM(3, 4, rngs=nnx.Rngs(0)), jnp.ones((2, 3, 3)))


def test_rngs_required_and_old_hidden_name_deprecated():
    with pytest.raises(TypeError, match="rngs"):
        LSTM(3, 4)
    with pytest.warns(DeprecationWarning, match="`hidden` is deprecated.*`hidden_features`"):
        old = GRU(3, hidden=4, rngs=nnx.Rngs(0))
    assert old.hidden_features == 4


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_unsigned_and_traced_lengths_pick_the_last_output(cls):
    # a length of 0 in uint8 once became index 255 (out of range: NaN); a traced length
    # above T reads the last step, as the scan stops there
    layer, xs = cls(3, 4, rngs=nnx.Rngs(0)), jax.random.normal(jax.random.key(0), (2, 5, 3))
    want = layer(xs, lengths=np.array([0, 3], np.int32))
    for dtype in (np.uint8, np.uint16, np.int8):
        got = layer(xs, lengths=np.array([0, 3], dtype))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(want[0], 0)
    over = jax.jit(lambda lengths: layer(xs, lengths=lengths))(jnp.array([6, 5]))
    np.testing.assert_allclose(over, layer(xs), rtol=1e-6, atol=1e-7)
