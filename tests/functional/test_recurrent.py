"""Tests for nnjax.functional.recurrent: the RNN, LSTM and GRU cells and their inits."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax
import nnjax.functional as F
from nnjax.functional import _recurrent_init, recurrent

from ._recurrent_ref import (
    CELLS,
    GATES,
    INITS,
    KINDS,
    assert_matches_torch,
    make_module,
    params_from,
    random_case,
    torch_cell_step,
)
from ._transforms import assert_transforms

B, IN, H = 3, 4, 5


def _random(key, kind, dtype=jnp.float32, batch=B):
    return random_case(key, kind, (batch, IN), H, dtype)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("kind", KINDS)
def test_cell_matches_torch_outputs_and_grads(key, kind):
    with jax.enable_x64(True):
        module = make_module(kind, IN, H, sequence=False)
        _, carry, x = _random(key, kind, jnp.float64)

        def torch_fn(tx, tcarry):
            new_carry, y = torch_cell_step(kind, module, tx, tcarry)
            return [*new_carry, y]

        args = (params_from(kind, module), carry, x)
        assert_matches_torch(key, kind, module, CELLS[kind], torch_fn, *args)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("kind", KINDS)
def test_cell_check_grads(key, kind):
    with jax.enable_x64(True):
        params, carry, x = _random(key, kind, jnp.float64, batch=2)
        check_grads(CELLS[kind], (params, carry, x), order=1, modes=("fwd", "rev"))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("kind", KINDS)
def test_cell_jit_vmap_grad_float32_bfloat16(key, kind):
    params, carry, x = _random(key, kind)
    assert_transforms(CELLS[kind], params, carry, x)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
@pytest.mark.parametrize("kind", KINDS)
def test_cell_computes_in_dtype_of_x(key, kind):
    params, carry, x = _random(key, kind)
    new_carry, y = CELLS[kind](params, carry, x.astype(jnp.bfloat16))
    jax.tree.map(lambda a: chex.assert_type(a, jnp.bfloat16), (new_carry, y))
    _, y32 = CELLS[kind](params, carry, x.astype(jnp.bfloat16).astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(y, np.float32), y32, atol=5e-2)


def test_lstm_gate_blocks_are_i_f_g_o():
    c = jnp.array([[0.5, -2.0]])
    big = 30.0 * jnp.ones((1, 2))
    # f open, i closed: c' = c; o open: h' = tanh(c').
    z = jnp.concatenate([-big, big, big, big], axis=-1)
    state, h = recurrent.lstm_gates(z, c)
    np.testing.assert_allclose(state.c, c, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, np.tanh(c), rtol=1e-6, atol=1e-6)
    # f closed, i open, g saturated at +1: c' = 1; o closed: h' = 0.
    state, h = recurrent.lstm_gates(jnp.concatenate([big, -big, big, -big], axis=-1), c)
    np.testing.assert_allclose(state.c, np.ones((1, 2)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, np.zeros((1, 2)), atol=1e-6)


def test_gru_gates_blocks_are_r_z_n(key):
    p = {"w_h": jnp.zeros((2, 6)), "b_h": jnp.zeros((6,))}
    h = jnp.array([[0.3, -0.7]])
    big = 30.0 * jnp.ones((1, 2))
    n = jnp.array([[0.2, 0.4]])
    # z open keeps h; z closed gives n = tanh(x_n) (r irrelevant since h U_n = 0).
    np.testing.assert_allclose(recurrent.gru_gates(jnp.concatenate([big, big, n], -1), h, p)[0], h)
    out = recurrent.gru_gates(jnp.concatenate([big, -big, n], -1), h, p)[0]
    np.testing.assert_allclose(out, np.tanh(n), rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_lstm_cell_accepts_a_plain_tuple_state(key):
    params, carry, x = _random(key, "lstm")
    expected = F.lstm_cell(params, carry, x)
    got = F.lstm_cell(params, (carry.h, carry.c), x)
    assert isinstance(got[0], F.LSTMState)
    jax.tree.map(np.testing.assert_array_equal, got, expected)


# --------------------------------------------------------------------------- init


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_init_shapes_dtypes_orthogonal_recurrent_blocks(key, kind, dtype):
    gates, hidden = GATES[kind], 6
    params = INITS[kind](key, 3, hidden, dtype=dtype)
    assert params["w_x"].shape == (3, gates * hidden)
    assert params["w_h"].shape == (hidden, gates * hidden)
    jax.tree.map(lambda a: chex.assert_type(a, dtype), params)
    w_h = np.asarray(params["w_h"], np.float64)
    blocks = np.split(w_h, gates, axis=1)
    tol = 1e-5 if dtype == jnp.float32 else 3e-2
    for block in blocks:
        np.testing.assert_allclose(block.T @ block, np.eye(hidden), atol=tol)
    for a, b in itertools.pairwise(blocks):  # each gate drawn separately
        assert not np.allclose(a, b)


def test_lstm_init_forget_bias_block_is_one_others_zero(key):
    b = np.asarray(F.lstm_cell_init(key, 3, 5)["b"])
    i, f, g, o = np.split(b, 4)
    np.testing.assert_array_equal(f, np.ones(5))
    np.testing.assert_array_equal(np.concatenate([i, g, o]), np.zeros(15))
    custom = np.asarray(F.lstm_cell_init(key, 3, 5, forget_bias=2.5)["b"])
    np.testing.assert_array_equal(np.split(custom, 4)[1], np.full(5, 2.5))


@pytest.mark.parametrize("kind", ["rnn", "gru"])
def test_rnn_gru_init_biases_zero(key, kind):
    params = INITS[kind](key, 3, 5)
    for name in set(params) - {"w_x", "w_h"}:
        np.testing.assert_array_equal(params[name], np.zeros(GATES[kind] * 5))


def test_init_accepts_custom_initializers(key):
    params = F.gru_cell_init(key, 3, 4, kernel_init="zeros", recurrent_init="ones")
    np.testing.assert_array_equal(params["w_x"], np.zeros((3, 12)))
    np.testing.assert_array_equal(params["w_h"], np.ones((4, 12)))


# --------------------------------------------------------------------------- errors


def _bad_inputs(kind):
    """(description, params/carry/x mutator, op, argument, expected, actual) cases."""
    g = GATES[kind]
    cases = [
        ("w_h", lambda p, c, x: ({**p, "w_h": jnp.zeros((H, (g + 1) * H))}, c, x),
         "params['w_h']", f"({H}, {g * H})", f"({H}, {(g + 1) * H})"),
        ("x", lambda p, c, x: (p, c, jnp.zeros((B, IN + 1))),
         "`x`", f"(..., {IN})", f"({B}, {IN + 1})"),
        ("w_x", lambda p, c, x: ({**p, "w_x": jnp.zeros((IN, g * H + 1))}, c, x),
         "params['w_x']", f"(*, {g * H})", f"({IN}, {g * H + 1})"),
        ("bias", lambda p, c, x: ({**p, sorted(set(p) - {"w_x", "w_h"})[0]: jnp.zeros(2)}, c, x),
         "params['b", f"({g * H}", "(2,)"),  # _checks prints (n) for 1-tuples
    ]  # fmt: skip
    if kind == "lstm":
        cases.append(("state.c", lambda p, c, x: (p, F.LSTMState(c.h, jnp.zeros((B, H + 1))), x),
                      "state.c", f"({B}, {H})", f"({B}, {H + 1})"))  # fmt: skip
    else:
        cases.append(("carry", lambda p, c, x: (p, jnp.zeros((B + 1, H)), x),
                      "`h`", f"({B}, {H})", f"({B + 1}, {H})"))  # fmt: skip
    return [(kind, *case) for case in cases]


@pytest.mark.parametrize(
    ("kind", "what", "mutate", "arg", "expected", "actual"),
    [case for kind in KINDS for case in _bad_inputs(kind)],
    ids=lambda v: v if isinstance(v, str) and " " not in v and "(" not in v else None,
)
@pytest.mark.slow
def test_wrong_shapes_raise_at_trace_time_naming_op_argument_shapes(
    key, kind, what, mutate, arg, expected, actual
):
    params, carry, x = mutate(*_random(key, kind))
    traced = jax.jit(CELLS[kind])
    with pytest.raises(AssertionError) as info:
        traced(params, carry, x)
    msg = str(info.value)
    for part in (f"{kind}_cell", arg, expected, actual):
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.parametrize("kind", KINDS)
def test_missing_parameter_and_integer_input_are_clear_errors(key, kind):
    params, carry, x = _random(key, kind)
    with pytest.raises(KeyError, match=f"{kind}_cell.*'w_h'"):
        CELLS[kind]({k: v for k, v in params.items() if k != "w_h"}, carry, x)
    with pytest.raises(TypeError, match=f"{kind}_cell.*floating"):
        CELLS[kind](params, carry, jnp.ones((B, IN), jnp.int32))


def test_split_reproduces_each_cell(key):
    """A cell equals its split: input projection then recurrence (what F.rnn hoists)."""
    for kind in KINDS:
        params, carry, x = _random(key, kind)
        split = CELLS[kind].split
        gx = x @ params["w_x"] + params[split.input_bias][None]
        expected = split.recurrence(params, carry, gx)
        jax.tree.map(np.testing.assert_array_equal, CELLS[kind](params, carry, x), expected)
        assert _recurrent_init.read_params("op", params, split.gates, split.biases)[1:] == (IN, H)


@pytest.mark.parametrize("init", [F.rnn_cell_init, F.lstm_cell_init, F.gru_cell_init])
def test_cell_inits_take_hidden_features_and_the_old_hidden(key, init):
    new = init(key, IN, hidden_features=H)
    with pytest.warns(DeprecationWarning, match=r"`hidden` is deprecated.*`hidden_features`"):
        old = init(key, IN, hidden=H)
    chex.assert_trees_all_equal(old, new)
    with pytest.raises(TypeError, match="both `hidden`"):
        init(key, IN, hidden=H, hidden_features=H)


def test_bidirectional_init_takes_hidden_features_and_the_old_hidden(key):
    new = F.bidirectional_init(key, F.gru_cell_init, IN, hidden_features=H)
    with pytest.warns(DeprecationWarning, match="`hidden` is deprecated"):
        old = F.bidirectional_init(key, F.gru_cell_init, IN, hidden=H)
    chex.assert_trees_all_equal(old, new)
    assert new["forward"]["w_h"].shape == (H, 3 * H)


def test_cell_state_of_the_wrong_structure_is_named(key):
    params, state, x = _random(key, "lstm")
    with pytest.raises(TypeError, match=r"lstm_cell: `state` must be an LSTMState\(h, c\)"):
        F.lstm_cell(params, jnp.zeros((B, H)), x)  # a bare h
    got, _ = F.lstm_cell(params, (state.h, state.c), x)  # a plain pair is an LSTMState
    assert isinstance(got, F.LSTMState)
    params, h, x = _random(key, "gru")
    with pytest.raises(
        TypeError, match=r"gru_cell: `h` must be one array h of shape \(3, 5\), got an LSTMState"
    ):
        F.gru_cell(params, F.LSTMState(h, h), x)
    with pytest.raises(AssertionError, match=r"gru_cell: argument `h` has shape \(3, 4\)"):
        F.gru_cell(params, jnp.zeros((B, H - 1)), x)


@pytest.mark.parametrize(
    ("kind", "carry_name", "use"),
    [
        ("lstm", "state.h", r"F\.lstm\(params, xs, state\)"),
        ("gru", "h", r"F\.gru\(params, xs, h\)"),
        ("rnn", "h", r"F\.rnn\(F\.rnn_cell, params, xs, h\)"),
    ],
)
def test_a_sequence_given_to_a_cell_blames_x_and_names_the_sequence_op(key, kind, carry_name, use):
    params, carry, _ = _random(key, kind)
    xs = jnp.ones((B, 7, IN))  # (B, T, in): a whole sequence
    match = (
        rf"^{kind}_cell: argument `x` has shape \({B}, 7, {IN}\) \(rank 3\), expected rank 2 "
        rf"as `{carry_name}` has shape \({B}, {H}\): a cell takes one time step, "
        rf"x \(B, in\); for a whole sequence xs \(B, T, in\) use {use}"
    )
    with pytest.raises(nnjax.ShapeError, match=match):
        CELLS[kind](params, carry, xs)
    with pytest.raises(nnjax.ShapeError, match=match):
        jax.jit(CELLS[kind])(params, carry, xs)
    # a carry with the same leading axes as x still runs the cell over them
    wide = jax.tree.map(lambda h: jnp.broadcast_to(h[:, None], (B, 7, H)), carry)
    assert jax.tree.leaves(CELLS[kind](params, wide, xs)[1])[0].shape == (B, 7, H)


def test_a_carry_missing_its_batch_axis_is_still_the_carry(key):
    params, h, x = _random(key, "gru")
    with pytest.raises(nnjax.ShapeError, match=r"gru_cell: argument `h` has shape \(5,\)"):
        F.gru_cell(params, h[0], x)


@pytest.mark.parametrize("init", [F.rnn_cell_init, F.lstm_cell_init, F.gru_cell_init])
def test_cell_inits_name_a_key_that_is_not_a_key(init):
    with pytest.raises(TypeError, match=rf"{init.__name__}: `key` must be a PRNG key.*got 0"):
        init(0, IN, H)


def test_bidirectional_state_must_be_a_pair_of_states(key):
    params = F.bidirectional_init(key, F.lstm_cell_init, IN, H)
    xs = jnp.ones((B, 7, IN))
    z = jnp.zeros((B, H))
    with pytest.raises(
        TypeError,
        match=r"bidirectional: `state` must be a pair \(forward_state, backward_state\).*single",
    ):
        F.bidirectional(F.lstm_cell, params, xs, state=F.LSTMState(z, z))
    with pytest.raises(
        TypeError, match=r"bidirectional: `state\[0\]` must be an LSTMState\(h, c\)"
    ):
        F.bidirectional(F.lstm_cell, params, xs, state=(z, z))
    with pytest.raises(KeyError, match=r"bidirectional: `params` has no key 'forward'"):
        F.bidirectional(F.lstm_cell, {"backward": params["backward"]}, xs)
    with pytest.raises(ValueError, match=r"bidirectional: `params` has an unexpected key 'w_x'"):
        F.bidirectional(F.lstm_cell, params["forward"], xs)  # one direction's parameters
    with pytest.raises(TypeError, match=r"bidirectional_init: `key` must be a PRNG key"):
        F.bidirectional_init(None, F.lstm_cell_init, IN, H)
    pair = (F.LSTMState(z, z), (z, z))
    fn = jax.jit(lambda p, x, s: F.bidirectional(F.lstm_cell, p, x, s))
    (_, bwd), ys = fn(params, xs, pair)
    _, ys0 = F.bidirectional(F.lstm_cell, params, xs, pair)
    np.testing.assert_allclose(ys, ys0, rtol=1e-5, atol=1e-6)
    assert isinstance(bwd, F.LSTMState) and bwd.h.shape == (B, H)


@pytest.mark.parametrize(
    ("direction", "index"), [("forward", 0), ("backward", 1)], ids=["forward", "backward"]
)
def test_bidirectional_errors_name_the_direction(key, direction, index):
    params = F.bidirectional_init(key, F.lstm_cell_init, IN, H)
    xs, z = jnp.ones((B, 7, IN)), jnp.zeros((B, H))
    one = lambda inner: {**params, direction: inner}
    where = rf"params\['{direction}'\]"
    with pytest.raises(nnjax.ShapeError, match=rf"bidirectional: argument `{where}\['w_h'\]`.*"
                       r"weight_hh\.T"):  # fmt: skip
        F.bidirectional(
            F.lstm_cell, one({**params[direction], "w_h": params[direction]["w_h"].T}), xs
        )
    without_b = {k: v for k, v in params[direction].items() if k != "b"}
    with pytest.raises(KeyError, match=rf"bidirectional: `{where}` has no key 'b'"):
        F.bidirectional(F.lstm_cell, one(without_b), xs)
    with pytest.warns(
        DeprecationWarning, match=rf"bidirectional: `{where}` has unexpected key 'zz'"
    ):
        F.bidirectional(F.lstm_cell, one({**params[direction], "zz": z}), xs)
    good = F.LSTMState(z, z)
    state = [good, good]
    state[index] = F.LSTMState(jnp.zeros((B, H + 1)), z)
    with pytest.raises(nnjax.ShapeError, match=rf"bidirectional: argument `state\[{index}\]\.h`"):
        F.bidirectional(F.lstm_cell, params, xs, state=tuple(state))
