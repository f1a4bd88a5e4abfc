"""Variable-length sequences (``lengths``) and ``bidirectional``, against PyTorch's
packed sequences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._recurrent_ref import (
    CELLS,
    INITS,
    KINDS,
    assert_matches_torch,
    make_module,
    param_grads_from,
    params_from,
    random_case,
)
from ._torch_ref import assert_close, to_torch, torch
from ._transforms import assert_transforms

B, T, IN, H = 3, 5, 3, 4
LENGTHS = np.array([5, 2, 4])
pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence


def run(kind, params, xs, state=None, **kw):
    if kind == "lstm":
        return F.lstm(params, xs, state, **kw)
    if kind == "gru":
        return F.gru(params, xs, state, **kw)
    return F.rnn(F.rnn_cell, params, xs, state, **kw)


def torch_packed(kind, module, xs, carry, lengths):
    """Runs ``module`` on the packed batch; returns ``(final leaves, ys (B, T, *))``."""
    packed = pack(xs, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
    state = None
    if carry is not None:
        state = tuple(leaf.unsqueeze(0) for leaf in carry)
        state = state if kind == "lstm" else state[0]
    out, final = module(packed, state)
    ys, _ = unpack(out, batch_first=True, total_length=xs.shape[1])
    final = final if kind == "lstm" else (final,)
    return tuple(final), ys


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
@pytest.mark.parametrize("precompute", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_lengths_match_torch_packed_sequences(key, kind, precompute):
    """Outputs, final state (at each true last step) and every gradient, in float64."""
    with jax.enable_x64(True):
        module = make_module(kind, IN, H, sequence=True)
        _, state, xs = random_case(key, kind, (B, T, IN), H, jnp.float64)
        fn = lambda p, s, x: run(kind, p, x, s, lengths=LENGTHS, precompute_inputs=precompute)

        def torch_fn(txs, tstate):
            final, ys = torch_packed(kind, module, txs, tstate, LENGTHS)
            return [*(f[0] for f in final), ys]

        args = (params_from(kind, module), state, xs)
        assert_matches_torch(key, kind, module, fn, torch_fn, *args)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_matches_torch_bidirectional_packed(key, kind):
    torch.manual_seed(0)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    module = cls(IN, H, batch_first=True, bidirectional=True).double()
    fwd = make_module(kind, IN, H, sequence=True)  # parameter layout donors
    bwd = make_module(kind, IN, H, sequence=True, seed=1)
    with torch.no_grad():
        for suffix, donor in (("", fwd), ("_reverse", bwd)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{name}_l0{suffix}").copy_(getattr(donor, f"{name}_l0"))
    xs = np.random.default_rng(0).standard_normal((B, T, IN))
    tx = to_torch(xs, requires_grad=True)
    packed = pack(tx, torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False)
    out, final = module(packed)
    tys, _ = unpack(out, batch_first=True, total_length=T)
    th = final[0] if kind == "lstm" else final  # (2, B, H)
    cot = np.random.default_rng(1).standard_normal((B, T, 2 * H))
    ((tys * to_torch(cot)).sum() + th.sum()).backward()

    with jax.enable_x64(True):
        params = {"forward": params_from(kind, fwd), "backward": params_from(kind, bwd)}

        def loss(params, xs):
            (f, b), ys = F.bidirectional(CELLS[kind], params, xs, lengths=LENGTHS)
            h = lambda s: s.h if kind == "lstm" else s
            return jnp.sum(ys * cot) + jnp.sum(h(f)) + jnp.sum(h(b)), (ys, h(f), h(b))

        (_, (ys, hf, hb)), (g_params, g_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            params, jnp.asarray(xs)
        )
    assert_close(ys, tys)
    assert_close(hf, th[0])
    assert_close(hb, th[1])
    assert_close(g_x, tx.grad)
    # Each direction's grads, read through a one-direction module (same layout helpers).
    for suffix, name in (("", "forward"), ("_reverse", "backward")):
        view = make_module(kind, IN, H, sequence=True)
        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(view, f"{w}_l0").grad = getattr(module, f"{w}_l0{suffix}").grad
        with jax.enable_x64(True):
            jax.tree.map(assert_close, g_params[name], param_grads_from(kind, view))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_full_lengths_equal_no_lengths_and_zero_length_keeps_the_initial_state(key):
    params, state, xs = random_case(key, "lstm", (B, T, IN), H)
    full = F.lstm(params, xs, state, lengths=np.full(B, T))
    plain = F.lstm(params, xs, state)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), full, plain)
    final, ys = F.lstm(params, xs, state, lengths=np.array([0, 1, 0]))
    np.testing.assert_array_equal(ys[0], 0.0)
    np.testing.assert_array_equal(ys[1, 1:], 0.0)
    np.testing.assert_array_equal(final.c[0], state.c[0])
    # reverse with lengths: the scan starts at step length - 1, the padding is never read
    padded = xs.at[1, 2:].set(100.0)
    a = F.gru(INITS["gru"](key, IN, H), xs, lengths=np.array([5, 2, 4]), reverse=True)
    b = F.gru(INITS["gru"](key, IN, H), padded, lengths=np.array([5, 2, 4]), reverse=True)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6), a, b)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_check_grads(key):
    with jax.enable_x64(True):
        params, state, xs = random_case(key, "gru", (B, 3, IN), H, jnp.float64)
        fn = lambda p, x, s: F.gru(p, x, s, lengths=np.array([3, 1, 2]))
        check_grads(fn, (params, xs, state), order=1, modes=("rev",))
        bi = {"forward": params, "backward": params}
        fn = lambda p, x: F.bidirectional(F.gru_cell, p, x, lengths=np.array([3, 1, 2]))[1]
        check_grads(jax.jit(fn), (bi, xs), order=1, modes=("rev",))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_transforms_and_no_retrace_for_new_lengths(key):
    params, _, xs = random_case(key, "lstm", (B, 3, IN), H)
    lengths = jnp.array([3, 1, 2])
    assert_transforms(lambda p, x: F.lstm(p, x, lengths=lengths), params, xs)
    traces = []
    jitted = jax.jit(lambda p, x, n: traces.append(1) or F.lstm(p, x, lengths=n))
    a = jitted(params, xs, lengths)
    b = jitted(params, xs, jnp.array([1, 1, 1]))
    assert len(traces) == 1
    assert not np.allclose(a[0].h, b[0].h)


def test_bidirectional_merges_and_init(key):
    params = F.bidirectional_init(key, F.rnn_cell_init, IN, H, dtype=jnp.bfloat16)
    assert params["forward"]["w_x"].dtype == jnp.bfloat16
    assert not np.allclose(params["forward"]["w_x"], params["backward"]["w_x"])
    xs = jax.random.normal(key, (B, T, IN))
    (_, _), cat = F.bidirectional(F.rnn_cell, params, xs)
    (_, _), total = F.bidirectional(F.rnn_cell, params, xs, merge="sum")
    np.testing.assert_allclose(total, cat[..., :H] + cat[..., H:], rtol=1e-2, atol=1e-2)
    with pytest.raises(ValueError, match="bidirectional: `merge` must be one of concat"):
        F.bidirectional(F.rnn_cell, params, xs, merge="max")


def test_bad_lengths_name_argument_and_values(key):
    params, _, xs = random_case(key, "lstm", (B, T, IN), H)
    with pytest.raises(ValueError, match=r"lstm: argument `lengths` must lie in \[0, 5\]"):
        F.lstm(params, xs, lengths=np.array([6, 1, 1]))
    with pytest.raises(AssertionError, match=r"gru: argument `lengths` has shape \(2,\)"):
        F.gru(INITS["gru"](key, IN, H), xs, lengths=np.array([1, 1]))
    with pytest.raises(TypeError, match="rnn: argument `lengths` has dtype float32"):
        F.rnn(F.rnn_cell, INITS["rnn"](key, IN, H), xs, lengths=jnp.ones(B))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_integer_initial_state_is_cast_as_the_cells_cast_it(key, kind):
    # it failed inside lax.scan ("carry input and carry output must have equal types")
    xs = jax.random.normal(key, (3, 5, 4))
    if kind == "lstm":
        p = F.lstm_cell_init(key, 4, 6)
        run = lambda s: F.lstm(p, xs, s)
        ints, floats = (
            F.LSTMState(*[jnp.ones((3, 6), int)] * 2),
            F.LSTMState(*[jnp.ones((3, 6))] * 2),
        )
    else:
        p = F.gru_cell_init(key, 4, 6)
        run = (
            (lambda s: F.gru(p, xs, s))
            if kind == "gru"
            else (lambda s: F.rnn(F.gru_cell, p, xs, s))
        )
        ints, floats = jnp.ones((3, 6), int), jnp.ones((3, 6))
    for got, want in zip(jax.tree.leaves(run(ints)), jax.tree.leaves(run(floats)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("lengths", "error", "message"),
    [
        (np.array([5, 2, 4], object), TypeError, r"NumPy array of dtype object .*"
         r"lengths\.astype\(np\.int32\)"),
        (np.array(["5", "2", "4"]), TypeError, "NumPy array of strings, dtype <U1"),
        ("5 2 4", TypeError, "the str '5 2 4'"),
        ([[5], [2, 1], [4]], ValueError, "a ragged list .* pad them"),
        ([5, None, 4], TypeError, "a list of dtype object"),
    ],
    ids=["object", "strings", "str", "ragged", "none-inside"],
)  # fmt: skip
def test_lengths_that_hold_no_numbers_name_the_op(key, lengths, error, message):
    params, _, xs = random_case(key, "gru", (B, T, IN), H)
    # each was JAX's or NumPy's own error, naming neither gru nor `lengths`
    with pytest.raises(error, match=rf"^gru: `lengths` must be a numeric array, got .*{message}"):
        F.gru(params, xs, lengths=lengths)


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_batch_takes_an_empty_list_of_lengths(key, kind):
    params = INITS[kind](key, IN, H)
    xs = jnp.zeros((0, T, IN))
    _, want = run(kind, params, xs, lengths=np.zeros(0, np.int32))
    for empty in ([], ()):  # jnp.asarray([]) is float32: was "has dtype float32, expected"
        _, ys = run(kind, params, xs, lengths=empty)
        assert ys.shape == want.shape == (0, T, H)
    with pytest.raises(AssertionError, match=rf"{kind}: argument `lengths` has shape \(0,\)"):
        run(kind, params, jnp.zeros((B, T, IN)), lengths=[])  # a shape error, not a dtype one


@pytest.mark.parametrize(
    "lengths",
    [[5.0, 2.0, 4.0], np.array([5.0, 2.0, 4.0]), np.zeros(0), [True, False, True]],
    ids=["float-list", "float-array", "empty-float-array", "bools"],
)
def test_lengths_that_are_not_integers_stay_a_type_error(key, lengths):
    params = INITS["gru"](key, IN, H)
    xs = jnp.zeros((len(lengths), T, IN))
    with pytest.raises(TypeError, match=r"^gru: argument `lengths` has dtype \w+, expected integ"):
        F.gru(params, xs, lengths=lengths)


def test_torch_lengths_are_read(key):
    params, _, xs = random_case(key, "gru", (B, T, IN), H)
    want = F.gru(params, xs, lengths=LENGTHS)
    got = F.gru(params, xs, lengths=torch.tensor(LENGTHS))
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(TypeError, match="gru: argument `lengths` has dtype float32"):
        F.gru(params, xs, lengths=torch.tensor(LENGTHS, dtype=torch.float32))
