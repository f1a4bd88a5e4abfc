"""Recurrences over sequences with no steps (``T == 0``), eagerly and under ``jit``.

No step runs, so the initial state passes through unchanged, ``ys`` is ``(B, 0, H)``,
the parameters get zero gradients and the initial state the final state's cotangent
(as ``lax.scan`` of zero steps gives). Before this test the hand-written backward
passes of ``F.lstm``, ``F.gru`` and ``F.rnn(F.rnn_cell)`` indexed a first step that
does not exist ("slice_sizes must be less than or equal to operand shape").
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax import nn

KEY = jax.random.key(0)
B, IN, H = 3, 4, 5

RUNS = {
    "lstm": (F.lstm_cell_init, F.lstm),
    "gru": (F.gru_cell_init, F.gru),
    "rnn(rnn_cell)": (F.rnn_cell_init, lambda p, xs, s, **kw: F.rnn(F.rnn_cell, p, xs, s, **kw)),
    "rnn(lstm_cell)": (F.lstm_cell_init, lambda p, xs, s, **kw: F.rnn(F.lstm_cell, p, xs, s, **kw)),
}
OPTIONS = {
    "plain": {},
    "reverse": {"reverse": True},
    "precomputed": {"precompute_inputs": True},
    "lengths": {"lengths": np.zeros(B, np.int32)},
}


def _state(name, dtype):
    rng = np.random.default_rng(1)
    h = jnp.asarray(rng.normal(size=(B, H)), dtype)
    if "lstm" in name:
        return F.LSTMState(h, jnp.asarray(rng.normal(size=(B, H)), dtype))
    return h


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("name", RUNS)
@pytest.mark.slow
def test_no_steps_pass_the_state_through(name, option, dtype, jit):
    init, run = RUNS[name]
    params = init(KEY, IN, H)
    xs = jnp.zeros((B, 0, IN), dtype)
    state = _state(name, dtype)

    def loss(params, state):
        final, ys = run(params, xs, state, **OPTIONS[option])
        assert ys.shape == (B, 0, H) and ys.dtype == dtype
        weights = jnp.arange(1.0, 1.0 + B * H).reshape(B, H)
        return sum(jnp.sum(a.astype(jnp.float32) * weights) for a in jax.tree.leaves(final))

    grad = jax.grad(loss, argnums=(0, 1))
    if jit:
        grad = jax.jit(grad)
    d_params, d_state = grad(params, state)
    final, _ = run(params, xs, state, **OPTIONS[option])
    for got, want in zip(jax.tree.leaves(final), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))
    for g in jax.tree.leaves(d_params):
        np.testing.assert_array_equal(np.asarray(g, np.float32), 0.0)
    weights = np.arange(1.0, 1.0 + B * H).reshape(B, H)
    for g in jax.tree.leaves(d_state):
        np.testing.assert_allclose(np.asarray(g, np.float32), weights)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("reverse", [False, True])
def test_layers_give_zeros_for_no_steps(cell, reverse):
    layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    model = layer(IN, H, reverse=reverse, rngs=nnx.Rngs(0))
    xs = jnp.zeros((B, 0, IN))
    np.testing.assert_array_equal(model(xs), np.zeros((B, H)))  # as lengths == 0 gives
    np.testing.assert_array_equal(model(xs, lengths=jnp.zeros(B, int)), np.zeros((B, H)))
    grads = nnx.grad(lambda m: jnp.sum(m(xs)))(model)
    for g in jax.tree.leaves(grads):
        np.testing.assert_array_equal(g, 0.0)


def test_bidirectional_and_the_sequence_classifier_take_no_steps():
    xs = jnp.zeros((B, 0, IN))
    both = nn.Bidirectional(IN, H, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(both(xs), np.zeros((B, 2 * H)))
    classifier = nn.SequenceClassifier(IN, (H,), 2, rngs=nnx.Rngs(0))
    bias = np.asarray(classifier.head.params()["bias"])
    np.testing.assert_allclose(classifier(xs), np.broadcast_to(bias, (B, 2)), atol=1e-7)
