"""The recurrent layers' last output read from the final state: equal to the stacked
outputs' last step, bit for bit, and no stack of outputs left in a prediction's program."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import GRU, LSTM, RNN, Bidirectional
from nnjax.nn.recurrent import final_holds_last, last_output

T, B, IN, H = 5, 3, 4, 6


def _layer(kind, return_sequences, dtype, reverse):
    if kind == "bidirectional":
        return Bidirectional(
            IN, H, cell="lstm", return_sequences=return_sequences, dtype=dtype, rngs=nnx.Rngs(0)
        )
    cls = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[kind]
    return cls(
        IN, H, return_sequences=return_sequences, reverse=reverse, dtype=dtype, rngs=nnx.Rngs(0)
    )


def _state(kind):
    h = jax.random.normal(jax.random.key(2), (B, H))
    one = F.LSTMState(h, 0.5 * h) if kind in ("lstm", "bidirectional") else h
    return (one, jax.tree.map(jnp.negative, one)) if kind == "bidirectional" else one


def _reference(layer, kind, x, state, lengths, reverse):
    """The last step read from the stacked outputs, as the layers did before."""
    ys = layer(x, state, lengths=lengths)
    if kind != "bidirectional":
        return last_output(ys, lengths, reverse)
    fwd, bwd = ys[..., :H], ys[..., H:]
    return jnp.concatenate([last_output(fwd, lengths, False), last_output(bwd, None, True)], -1)


#: (kind, reverse, lengths with an empty sequence, a state of the caller's)
CASES = [
    c
    for c in itertools.product(
        ["lstm", "gru", "rnn", "bidirectional"], [False, True], [None, (3, 0, 5)], [False, True]
    )
    if not (c[0] == "bidirectional" and c[1])  # it has no `reverse`
]
#: One case of each kind in the default run, the four together reading the final state
#: with and without lengths and from a state of the caller's, and the stack's last step
#: where a length of 0 follows such a state; the other cases with `-m slow`.
DEFAULT = {("lstm", False, (3, 0, 5), True), ("gru", True, None, False),
           ("rnn", False, None, True), ("bidirectional", False, (3, 0, 5), False)}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "reverse", "lengths", "given_state"),
    [c if c in DEFAULT else pytest.param(*c, marks=pytest.mark.slow) for c in CASES],
)
@pytest.mark.parametrize("steps", [T, 0])
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_last_output_and_its_gradients_are_the_stacks_last_step(
    kind, reverse, lengths, given_state, steps
):
    x = jax.random.normal(jax.random.key(1), (B, steps, IN))
    lens = None if lengths is None else jnp.array([min(n, steps) for n in lengths])
    state = _state(kind) if given_state else None
    layer, stacked = _layer(kind, False, None, reverse), _layer(kind, True, None, reverse)
    got = layer(x, state, lengths=lens)
    want = _reference(stacked, kind, x, state, lens, reverse)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    if steps:  # the gradients, of the parameters and of the inputs, are the same bits too
        got_g = nnx.grad(lambda m, x: _loss(m(x, state, lengths=lens)), argnums=(0, 1))(layer, x)
        want_g = nnx.grad(
            lambda m, x: _loss(_reference(m, kind, x, state, lens, reverse)), argnums=(0, 1)
        )(stacked, x)
        for a, b in zip(jax.tree.leaves(got_g), jax.tree.leaves(want_g), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _loss(y):
    return jnp.sum(jnp.sin(y.astype(jnp.float32)))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "bidirectional"])
def test_a_bfloat16_layer_gives_the_stacks_last_step_in_bfloat16(kind):
    x = jax.random.normal(jax.random.key(1), (B, T, IN))
    layer, stacked = (
        _layer(kind, False, jnp.bfloat16, False),
        _layer(kind, True, jnp.bfloat16, False),
    )
    got, want = layer(x), _reference(stacked, kind, x, None, None, False)
    assert got.dtype == want.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))


def test_the_final_state_holds_the_last_output_from_zeros_or_without_lengths():
    assert final_holds_last(None, jnp.array([0, 2]), 3)
    assert final_holds_last(None, None, 0)
    assert final_holds_last(jnp.zeros((2, 4)), None, 3)
    assert not final_holds_last(jnp.zeros((2, 4)), jnp.array([0, 2]), 3)  # a length of 0
    assert not final_holds_last(jnp.zeros((2, 4)), None, 0)  # no steps: zeros, not the state


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "bidirectional"])
def test_a_prediction_keeps_no_stack_of_outputs(kind):
    steps, batch = 64, 8
    x = jnp.zeros((batch, steps, IN))
    stack = f"f32[{steps},{batch},{H}]"  # the scan's stacked outputs, time-major

    def program(model):
        return jax.jit(lambda x: model(x)).lower(x).compile().as_text()

    assert stack in program(_layer(kind, True, None, False))  # the check can see it
    assert stack not in program(_layer(kind, False, None, False))
