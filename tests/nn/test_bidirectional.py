"""Bidirectional and the lengths of RNN/LSTM/GRU layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn


# fixtures, not module constants: made at import they cost a compilation (of the normal
# draw, near a second) in every test process's collection
@pytest.fixture(scope="module")
def xs() -> jax.Array:
    return jax.random.normal(jax.random.key(1), (3, 5, 2))


@pytest.fixture(scope="module")
def lengths() -> jax.Array:
    return jnp.array([5, 2, 0])


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_layer_lengths_return_the_true_last_step(cls, xs, lengths):
    layer = cls(2, 4, return_sequences=True, return_state=True, rngs=nnx.Rngs(0))
    ys, final = layer(xs, lengths=lengths)
    last = cls(2, 4, rngs=nnx.Rngs(0))(xs, lengths=lengths)
    h = final.h if isinstance(final, F.LSTMState) else final
    np.testing.assert_allclose(last[:2], h[:2], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(last[1], ys[1, 1], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(last[2], 0.0)  # empty sequence
    np.testing.assert_array_equal(ys[1, 2:], 0.0)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_matches_the_functional_op(merge, xs, lengths):
    layer = nn.Bidirectional(2, 4, merge=merge, return_state=True, rngs=nnx.Rngs(0))
    out, (fwd, bwd) = layer(xs, lengths=lengths)
    (f_ref, b_ref), ys = F.bidirectional(F.lstm_cell, layer.params(), xs, lengths=lengths)
    np.testing.assert_allclose(fwd.h, f_ref.h, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bwd.h, b_ref.h, rtol=1e-6, atol=1e-6)
    expected_f, expected_b = f_ref.h, ys[:, 0, 4:]  # forward at length - 1, backward at 0
    np.testing.assert_allclose(b_ref.h, expected_b, rtol=1e-6, atol=1e-6)
    combined = (
        jnp.concatenate([expected_f, expected_b], -1)
        if merge == "concat"
        else (expected_f + expected_b)
    )
    np.testing.assert_allclose(out, combined, rtol=1e-6, atol=1e-6)


def test_bidirectional_sequences_params_and_mixed_precision(xs):
    layer = nn.Bidirectional(2, 4, cell="rnn", return_sequences=True, dtype=jnp.bfloat16,
                             rngs=nnx.Rngs(0))  # fmt: skip
    ys = layer(xs)
    assert ys.shape == (3, 5, 8) and ys.dtype == jnp.bfloat16
    params = nnx.to_pure_dict(nnx.state(layer, nnx.Param))
    expected = F.bidirectional_init(nnx.Rngs(0).params(), F.rnn_cell_init, 2, 4)
    assert jax.tree.structure(params) == jax.tree.structure(expected)
