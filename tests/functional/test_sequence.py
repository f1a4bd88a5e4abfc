"""Tests for nnjax.functional.sequence: rnn, lstm, gru and zero_carry."""

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional import _eager, sequence

from ._recurrent_ref import (
    CELLS,
    KINDS,
    assert_matches_torch,
    make_module,
    params_from,
    random_case,
    torch_sequence,
)
from ._torch_ref import assert_close, to_torch
from ._transforms import assert_transforms

B, T, IN, H = 2, 5, 3, 4
FORMULATIONS = [True, False]  # precompute_inputs


def run(kind, params, xs, state=None, **kw):
    """The sequence op under test: F.lstm, F.gru, or F.rnn(F.rnn_cell, ...)."""
    if kind == "lstm":
        return F.lstm(params, xs, state, **kw)
    if kind == "gru":
        return sequence.gru(params, xs, state, **kw)
    return F.rnn(F.rnn_cell, params, xs, state, **kw)


def _random(key, kind, dtype=jnp.float32, *, t=T):
    return random_case(key, kind, (B, t, IN), H, dtype)


def _python_loop(cell, params, xs, state, reverse=False):
    """An independent reference: a Python loop over time calling the cell."""
    steps = range(xs.shape[1])
    ys = [None] * xs.shape[1]
    for t in reversed(steps) if reverse else steps:
        state, ys[t] = cell(params, state, xs[:, t])
    return state, jnp.stack(ys, axis=1)


def _assert_tree_close(actual, expected, tol=1e-5):
    chex.assert_trees_all_equal_structs(actual, expected)
    jax.tree.map(
        lambda a, e: np.testing.assert_allclose(a, e, rtol=tol, atol=tol), actual, expected
    )


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize(("reverse", "precompute"), [(False, True), (False, False), (True, True)])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch_outputs_final_state_and_grads(key, kind, reverse, precompute):
    """Non-zero initial state; grads w.r.t. params, xs and the initial state."""
    with jax.enable_x64(True):
        module = make_module(kind, IN, H, sequence=True)
        _, state, xs = _random(key, kind, jnp.float64)
        fn = lambda p, s, x: run(kind, p, x, s, reverse=reverse, precompute_inputs=precompute)

        def torch_fn(txs, tstate):
            final, ys = torch_sequence(kind, module, txs, tstate, reverse=reverse)
            return [*final, ys]

        args = (params_from(kind, module), state, xs)
        assert_matches_torch(key, kind, module, fn, torch_fn, *args)


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
@pytest.mark.parametrize("kind", KINDS)
def test_default_state_is_zeros_like_torch(key, kind):
    with jax.enable_x64(True):
        module = make_module(kind, IN, H, sequence=True, seed=1)
        _, _, xs = _random(key, kind, jnp.float64)
        final, ys = run(kind, params_from(kind, module), xs)
        tfinal, tys = torch_sequence(kind, module, to_torch(xs), None)
        assert_close(ys, tys)
        for a, t in zip(jax.tree.leaves(final), tfinal):
            assert_close(a, t)


# --------------------------------------------------------------------------- formulations


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize(
    ("reverse", "precompute", "unroll"),
    [(False, True, 1), (True, False, 1), (True, True, 3), (False, False, 4)],
)
@pytest.mark.parametrize("kind", KINDS)
def test_equals_python_loop_over_the_cell(key, kind, reverse, precompute, unroll):
    """F.lstm / F.gru / F.rnn equal stepping the cell by hand, in every formulation."""
    params, state, xs = _random(key, kind)
    expected = _python_loop(CELLS[kind], params, xs, state, reverse)
    got = run(kind, params, xs, state, reverse=reverse, precompute_inputs=precompute, unroll=unroll)
    _assert_tree_close(got, expected)
    if kind != "rnn":  # run() is already F.rnn for the Elman cell
        generic = F.rnn(
            CELLS[kind], params, xs, state, reverse=reverse, precompute_inputs=precompute
        )
        _assert_tree_close(generic, expected)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("kind", KINDS)
def test_check_grads(key, kind):
    with jax.enable_x64(True):
        params, state, xs = _random(key, kind, jnp.float64, t=3)
        # Both formulations in reverse mode (training); forward mode through F.rnn of
        # the cell (F.lstm and F.gru have a custom VJP, reverse mode only).
        for precompute in (True, False):
            fn = lambda p, x, s, pre=precompute: run(kind, p, x, s, precompute_inputs=pre)
            check_grads(fn, (params, xs, state), order=1, modes=("rev",))
        cell = {"lstm": F.lstm_cell, "gru": F.gru_cell}.get(kind, F.rnn_cell)
        generic = lambda p, x, s: F.rnn(cell, p, x, s, precompute_inputs=True)
        check_grads(generic, (params, xs, state), order=1, modes=("fwd",))


# --------------------------------------------------------------------------- transforms


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize(("kind", "precompute"), [("lstm", True), ("lstm", False), ("gru", True)])
def test_jit_vmap_grad_float32_bfloat16_no_retrace(key, kind, precompute):
    params, state, xs = _random(key, kind, t=3)
    fn = lambda p, x, s: run(kind, p, x, s, precompute_inputs=precompute)
    assert_transforms(fn, params, xs, state)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_vmap_over_a_batch_of_parameter_sets(key):
    keys = jax.random.split(key, 3)
    stacked = jax.vmap(lambda k: F.lstm_cell_init(k, IN, H))(keys)
    xs = jax.random.normal(key, (B, T, IN))
    final, ys = jax.jit(jax.vmap(F.lstm, in_axes=(0, None)))(stacked, xs)
    assert ys.shape == (3, B, T, H)
    reference = jax.jit(F.lstm)  # one compile for the three members
    for m in range(3):
        one = jax.tree.map(lambda a, m=m: a[m], stacked)
        _assert_tree_close(jax.tree.map(lambda a, m=m: a[m], (final, ys)), reference(one, xs))
    assert not np.allclose(ys[0], ys[1])


def test_float32_state_with_bfloat16_inputs_computes_in_bfloat16(key):
    params, state, xs = _random(key, "lstm")
    final, ys = jax.jit(F.lstm)(params, xs.astype(jnp.bfloat16), state)
    jax.tree.map(lambda a: chex.assert_type(a, jnp.bfloat16), (final, ys))
    _, ys32 = F.lstm(params, xs.astype(jnp.bfloat16).astype(jnp.float32), state)
    np.testing.assert_allclose(np.asarray(ys, np.float32), ys32, atol=5e-2)


def test_lstm_accepts_a_plain_tuple_state(key):
    params, state, xs = _random(key, "lstm")
    got = F.lstm(params, xs, (state.h, state.c))
    assert isinstance(got[0], F.LSTMState)
    _assert_tree_close(got, F.lstm(params, xs, state))


def test_custom_cell_with_explicit_state(key):
    """Any cell(params, carry, x) works; here a running sum with a scale."""
    cell = lambda scale, total, x: (total + scale * x, total + scale * x)
    xs = jax.random.normal(key, (B, T, IN))
    final, ys = F.rnn(cell, 2.0, xs, jnp.zeros((B, IN)))
    np.testing.assert_allclose(ys, 2.0 * np.cumsum(xs, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final, ys[:, -1])
    _, ys_rev = F.rnn(cell, 2.0, xs, jnp.zeros((B, IN)), reverse=True)
    np.testing.assert_allclose(
        ys_rev, 2.0 * np.cumsum(xs[:, ::-1], axis=1)[:, ::-1], rtol=1e-5, atol=1e-6
    )


def test_zero_carry_structure(key):
    state = F.zero_carry(F.lstm_cell, F.lstm_cell_init(key, IN, H), (B,), jnp.bfloat16)
    assert isinstance(state, F.LSTMState)
    for leaf in state:
        chex.assert_shape(leaf, (B, H))
        chex.assert_type(leaf, jnp.bfloat16)
        assert not np.any(np.asarray(leaf, np.float32))


def test_default_formulation_per_backend():
    assert sequence._default_precompute("gpu") and sequence._default_precompute("tpu")
    assert not sequence._default_precompute("cpu")
    current = sequence._default_precompute(jax.default_backend())
    assert sequence._default_precompute() is current


# --------------------------------------------------------------------------- errors


def test_custom_cell_without_zero_carry_needs_a_state(key):
    cell = lambda p, h, x: (h + x, h + x)
    with pytest.raises(TypeError, match=r"zero_carry.*pass `state`"):
        F.rnn(cell, {}, jnp.ones((B, T, IN)))
    with pytest.raises(TypeError, match=r"precompute_inputs=True.*split"):
        F.rnn(cell, {}, jnp.ones((B, T, IN)), jnp.zeros((B, IN)), precompute_inputs=True)


def _zeros(*shape):
    """Makes zeros of ``shape`` when called: in the test, not while pytest collects."""
    return functools.partial(jnp.zeros, shape)


def _bad_cases():
    """The cases; ``w_h``, ``xs`` and ``state`` are makers of the bad value, or None."""
    g = {"rnn": 1, "lstm": 4, "gru": 3}
    cases = []
    for kind, op in (("lstm", "lstm"), ("gru", "gru"), ("rnn", "rnn")):
        bad_state = (
            (lambda: F.LSTMState(jnp.zeros((B, H)), jnp.zeros((B + 1, H))))
            if kind == "lstm"
            else _zeros(B + 1, H)
        )
        state_arg = "state.c" if kind == "lstm" else "state"
        cases += [
            (kind, op, "xs rank 2", None, _zeros(B, IN), None,
             "`xs`", "rank 3", f"({B}, {IN})"),
            (kind, op, "feature size", None, _zeros(B, T, IN + 1), None,
             "`xs`", f"(*, *, {IN})", f"({B}, {T}, {IN + 1})"),
            (kind, op, "state shape", None, None, bad_state,
             state_arg, f"({B}, {H})", f"({B + 1}, {H})"),
            (kind, op, "w_h shape", _zeros(H, g[kind] * H + 1), None, None,
             "params['w_h']", f"({H}, {g[kind] * H})", f"({H}, {g[kind] * H + 1})"),
        ]  # fmt: skip
    return cases


@pytest.mark.parametrize("precompute", FORMULATIONS)
@pytest.mark.parametrize(
    ("kind", "op", "what", "w_h", "xs", "state", "arg", "expected", "actual"),
    _bad_cases(),
    ids=[f"{c[0]}-{c[2]}" for c in _bad_cases()],
)
def test_wrong_shapes_raise_at_trace_time(
    key, precompute, kind, op, what, w_h, xs, state, arg, expected, actual
):
    w_h, xs, state = (None if make is None else make() for make in (w_h, xs, state))
    params, good_state, good_xs = _random(key, kind)
    if w_h is not None:
        params = {**params, "w_h": w_h}
    fn = jax.jit(lambda p, x, s: run(kind, p, x, s, precompute_inputs=precompute))
    with pytest.raises(AssertionError) as info:
        fn(params, good_xs if xs is None else xs, good_state if state is None else state)
    msg = str(info.value)
    for part in (f"{op}:", arg, expected, actual):
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.parametrize("batch", [B, H])  # B = 2 used to be unpacked along the batch
def test_lstm_state_given_a_bare_array_is_named(key, batch):
    params = F.lstm_cell_init(key, IN, H)
    with pytest.raises(
        TypeError, match=r"lstm: `state` must be an LSTMState\(h, c\).*array of shape"
    ):
        F.lstm(params, jnp.ones((batch, T, IN)), jnp.zeros((batch, H)))


def test_gru_state_given_an_lstm_state_is_named(key):
    params = F.gru_cell_init(key, IN, H)
    z = jnp.zeros((B, H))
    with pytest.raises(TypeError, match=r"gru: `state` must be one array h of shape \(2, 4\)"):
        sequence.gru(params, jnp.ones((B, T, IN)), F.LSTMState(z, z))


def test_integer_xs_is_named_xs(key):
    params = F.lstm_cell_init(key, IN, H)
    with pytest.raises(TypeError, match=r"lstm: argument `xs` has dtype int32"):
        F.lstm(params, jnp.ones((B, T, IN), jnp.int32))


def test_lstm_state_as_a_pair_or_list_runs_under_jit(key):
    params, state, xs = _random(key, "lstm")
    want = F.lstm(params, xs, state)
    for given in ((state.h, state.c), [state.h, state.c]):
        got = jax.jit(F.lstm)(params, xs, given)
        chex.assert_trees_all_close(got, want, rtol=1e-6)
        assert isinstance(got[0], F.LSTMState)
    # F.rnn with the LSTM cell takes the pair too
    chex.assert_trees_all_close(F.rnn(F.lstm_cell, params, xs, (state.h, state.c)), want, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.slow
def test_an_eager_call_of_a_built_in_cell_is_one_program_per_shape(kind):
    """Eagerly, one cached program (not a new scan compiled at every call)."""
    _eager._program.cache_clear()
    params, _, xs = _random(jax.random.key(3), kind)
    lengths = jnp.array([5, 2])
    first, again = run(kind, params, xs), run(kind, params, xs + 1.0)
    masked = run(kind, params, xs, lengths=lengths)
    assert _eager._program.cache_info()[:2] == (2, 1)  # hits, misses (lengths: jit retraces)
    jitted = jax.jit(lambda xs, lengths: run(kind, params, xs, lengths=lengths))
    for got, arg, lens in ((first, xs, None), (again, xs + 1.0, None), (masked, xs, lengths)):
        chex.assert_trees_all_close(got, jitted(arg, lens), rtol=1e-5, atol=1e-6)
    # traced calls (grad) scan the cell itself: gradients as jitted, no new program
    loss = lambda p: jnp.sum(run(kind, p, xs)[1] ** 2)
    chex.assert_trees_all_close(jax.grad(loss)(params), jax.jit(jax.grad(loss))(params), rtol=1e-5)
    assert _eager._program.cache_info().misses == 1


def test_an_eager_call_of_a_user_cell_is_traced_every_time():
    """A user's cell may read Python state, so eager calls do not cache its program."""
    _eager._program.cache_clear()
    scale = [1.0]
    cell = lambda p, h, x: (h * scale[0] + x, h)
    xs = jnp.ones((2, 3, 4))
    first = F.rnn(cell, None, xs, jnp.zeros((2, 4)))[0]
    scale[0] = 2.0
    second = F.rnn(cell, None, xs, jnp.zeros((2, 4)))[0]
    np.testing.assert_allclose(first, 3.0), np.testing.assert_allclose(second, 7.0)
    assert _eager._program.cache_info().currsize == 0


# ------------------------------------------------------- initial states that are no arrays
STATE_SHAPE = (B, H)  # what each array of the carry must be for _random's xs


def _state_call(kind, key):
    """``(call taking an initial state, how its leaves are named, a state it accepts)``."""
    params, _, xs = _random(key, kind)
    zeros = np.zeros(STATE_SHAPE, np.float32)
    if kind == "lstm":
        return (lambda s: F.lstm(params, xs, (zeros, s))), "state.c", zeros
    return (lambda s: run(kind, params, xs, s)), "state", zeros


@pytest.mark.parametrize("kind", KINDS)
def test_object_and_string_states_name_the_op_and_the_state(key, kind):
    call, name, zeros = _state_call(kind, key)
    head = rf"^{kind}: `{re.escape(name)}` must be a numeric array, got a NumPy array of"
    with pytest.raises(TypeError, match=head + rf" dtype object .*{re.escape(name)}\.astype"):
        call(zeros.astype(object))  # was JAX's "Error interpreting argument to stage"
    with pytest.raises(TypeError, match=head + " strings, dtype <U3"):
        call(zeros.astype(str))
    assert call(zeros.astype(object).astype(np.float32)) is not None  # the fix works


def test_lstm_state_lists_are_read_and_bad_ones_named(key):
    params, _, xs = _random(key, "lstm")
    zeros = np.zeros(STATE_SHAPE, np.float32)
    want = F.lstm(params, xs, (zeros, zeros))
    got = F.lstm(params, xs, (zeros.tolist(), zeros.tolist()))  # was "(2, 4), expected (2, 4)"
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(g, w)
    ragged = [[0.0] * H, [0.0]]
    with pytest.raises(ValueError, match=r"^lstm: `state.h` .* got a ragged list .* pad them"):
        F.lstm(params, xs, F.LSTMState(ragged, zeros))
    with pytest.raises(TypeError, match=r"^lstm: `state.c` must be a numeric array, got the str"):
        F.lstm(params, xs, F.LSTMState(zeros, "0.0"))  # was a ShapeError about shape ()


@pytest.mark.parametrize("kind", KINDS)
def test_torch_states_that_require_grad_are_read_detached(key, kind):
    torch = pytest.importorskip("torch")
    call, _, zeros = _state_call(kind, key)
    want = call(zeros + 0.5)
    got = call(torch.tensor(zeros + 0.5, requires_grad=True))  # numpy() refused it
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(g, w)


def test_a_users_cell_gets_its_state_leaves_read_and_named():
    def cell(w, carry, x):  # a carry of (h, step count): a user's own structure
        h = jnp.tanh(x @ w + carry[0])
        return (h, carry[1] + 1), h

    w, xs = jnp.ones((IN, H)) / 4, jnp.ones((B, T, IN))
    zeros = np.zeros(STATE_SHAPE, np.float32)
    (h, steps), _ = F.rnn(cell, w, xs, (zeros, 0))
    assert int(steps) == T
    with pytest.raises(TypeError, match=r"^rnn: `state` must be a numeric array, got a NumPy ar"):
        F.rnn(cell, w, xs, (zeros.astype(object), 0))  # was "Value ... with dtype object"
    torch = pytest.importorskip("torch")
    got, _ = F.rnn(cell, w, xs, (torch.tensor(zeros, requires_grad=True), 0))
    np.testing.assert_array_equal(got[0], h)
