"""The formulations of F.lstm, F.gru and nn.RNN's Elman scan with a custom VJP over the
whole sequence (``_lstm_scan``, ``_gru_scan``, ``_rnn_scan``) against autodiff of
``F.rnn(cell, ...)``, PyTorch and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional import _rnn_scan

from ._recurrent_ref import (
    CELLS,
    make_module,
    param_grads_from,
    params_from,
    random_case,
    torch_sequence,
)
from ._torch_ref import torch

B, T, IN, H = 3, 5, 3, 4
LENGTHS = np.array([5, 2, 0])
OPS = {"lstm": F.lstm, "gru": F.gru, "rnn": _rnn_scan.elman}
# (reverse, lengths, zero initial state, unroll): every path through the scan.
CASES = [
    (False, None, False, 1),
    (True, LENGTHS, False, 2),
    (True, None, False, 1),
    (False, LENGTHS, False, 1),
    (False, None, True, 3),
]


def _loss(fn, key):
    """A random projection of every output (final state, ys), so all are checked."""

    def loss(params, xs, state):
        leaves = jax.tree.leaves(fn(params, xs, state))
        cots = [jax.random.normal(jax.random.fold_in(key, i), a.shape, a.dtype)
                for i, a in enumerate(leaves)]  # fmt: skip
        return sum(jnp.sum(a * c) for a, c in zip(leaves, cots))

    return loss


def _fused_and_autodiff(kind, reverse, lengths, zero_state, unroll):
    kw = dict(reverse=reverse, lengths=lengths, unroll=unroll, precompute_inputs=False)

    def fused(p, x, s):
        return OPS[kind](p, x, None if zero_state else s, **kw)

    def autodiff(p, x, s):
        return F.rnn(CELLS[kind], p, x, None if zero_state else s, **kw)

    return fused, autodiff


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.slow  # two compiled grads of scans per case: 10-35 s on a loaded 2-core machine
@pytest.mark.parametrize(("reverse", "lengths", "zero_state", "unroll"), CASES)
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_outputs_and_grads_equal_autodiff_of_the_cell_float32(
    key, kind, reverse, lengths, zero_state, unroll
):
    params, state, xs = random_case(key, kind, (B, T, IN), H)
    fused, autodiff = _fused_and_autodiff(kind, reverse, lengths, zero_state, unroll)
    grad = lambda fn: jax.jit(jax.value_and_grad(_loss(fn, key), argnums=(0, 1, 2)))
    jax.tree.map(_close, grad(fused)(params, xs, state), grad(autodiff)(params, xs, state))
    outs = jax.jit(fused)(params, xs, state), jax.jit(autodiff)(params, xs, state)
    jax.tree.map(_close, *outs)


@pytest.mark.parametrize(
    ("kind", "reverse"),
    [("lstm", False), ("gru", True), ("rnn", True),
     pytest.param("lstm", True, marks=pytest.mark.slow),
     pytest.param("gru", False, marks=pytest.mark.slow)],
)  # fmt: skip
@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_matches_torch_float32(key, kind, reverse):
    """float32 outputs and every gradient against nn.LSTM / nn.GRU (float32 weights)."""
    module = make_module(kind, IN, H, sequence=True).float()
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: np.asarray(a, np.float32), params_from(kind, module))
    _, state, xs = random_case(key, kind, (B, T, IN), H)
    op = lambda p, x, s: OPS[kind](p, x, s, reverse=reverse)
    final, ys = jax.jit(op)(params, xs, state)
    cot = jax.random.normal(key, ys.shape)
    g = jax.grad(lambda p, x, s: jnp.sum(op(p, x, s)[1] * cot), (0, 1, 2))
    g_params, g_xs, g_state = g(params, xs, state)

    tx = torch.tensor(np.asarray(xs), requires_grad=True)
    tcarry = tuple(torch.tensor(np.asarray(a), requires_grad=True) for a in jax.tree.leaves(state))
    tfinal, tys = torch_sequence(kind, module, tx, tcarry, reverse=reverse)
    (tys * torch.tensor(np.asarray(cot))).sum().backward()

    def close(a, t):
        t = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        _close(a, t)

    close(ys, tys)
    for a, t in zip(jax.tree.leaves(final), tfinal):
        close(a, t)
    close(g_xs, tx.grad)
    for a, t in zip(jax.tree.leaves(g_state), tcarry):
        close(a, t.grad)
    with jax.enable_x64(True):
        expected = param_grads_from(kind, module)
    jax.tree.map(close, g_params, expected)


@pytest.mark.slow  # finite differences of second order: 30-50 s on a loaded 2-core machine
@pytest.mark.parametrize(("reverse", "lengths"), [(False, None), (True, LENGTHS)])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_check_grads_first_and_second_order_reverse_mode(key, kind, reverse, lengths):
    with jax.enable_x64(True):
        params, state, xs = random_case(key, kind, (B, 3, IN), H, jnp.float64)
        lengths = None if lengths is None else np.minimum(lengths, 3)
        fn = lambda p, x, s: OPS[kind](p, x, s, reverse=reverse, lengths=lengths)
        check_grads(fn, (params, xs, state), order=2, modes=("rev",))


@pytest.mark.slow
def test_forward_mode_is_available_through_rnn_of_the_cell(key):
    """The custom VJP has no JVP; ``F.rnn(F.lstm_cell, ...)`` (autodiff) is the way."""
    params, state, xs = random_case(key, "lstm", (B, T, IN), H)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: F.lstm(params, x, state)[1], (xs,), (xs,))
    _, tangent = jax.jvp(lambda x: F.rnn(F.lstm_cell, params, x, state)[1], (xs,), (xs,))
    assert tangent.shape == (B, T, H)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.slow
def test_jitted_grad_does_not_retrace(key, kind):
    params, state, xs = random_case(key, kind, (B, T, IN), H)
    traces = []

    @jax.jit
    def grad(p, x, s):
        traces.append(1)
        return jax.grad(lambda p: jnp.sum(OPS[kind](p, x, s, lengths=LENGTHS)[1] ** 2))(p)

    first = grad(params, xs, state)
    second = grad(jax.tree.map(lambda a: a * 0.5, params), xs * 2, state)
    assert len(traces) == 1
    assert not np.allclose(first["w_h"], second["w_h"])


@pytest.mark.slow  # ~10 s on a loaded 2-core machine
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bfloat16_grads_keep_dtype_and_follow_float32(key, kind):
    params, state, xs = random_case(key, kind, (B, T, IN), H)
    loss = lambda p, x: jnp.sum(OPS[kind](p, x, state)[1].astype(jnp.float32) ** 2)
    g16 = jax.jit(jax.grad(loss))(jax.tree.map(lambda a: a.astype(jnp.bfloat16), params),
                                  xs.astype(jnp.bfloat16))  # fmt: skip
    g32 = jax.grad(loss)(params, xs)
    for name in g32:
        assert g16[name].dtype == jnp.bfloat16
        scale = float(jnp.max(jnp.abs(g32[name])))
        np.testing.assert_allclose(
            np.asarray(g16[name], np.float32), g32[name], rtol=0.1, atol=0.05 * scale
        )


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bfloat16_without_native_support_runs_the_scan_in_float32(monkeypatch, key, kind):
    """Forced emulated case: the float32 scan of the bfloat16 values, rounded to bfloat16."""
    from nnjax import _hardware

    monkeypatch.setattr(_hardware, "widen_bfloat16", lambda dtype: dtype == jnp.bfloat16)
    params, state, xs = random_case(key, kind, (B, T, IN), H)
    rounded = lambda tree: jax.tree.map(lambda a: a.astype(jnp.bfloat16), tree)
    final, ys = jax.jit(lambda p, x, s: OPS[kind](p, x, s))(rounded(params), rounded(xs), state)
    jax.tree.map(lambda a: np.testing.assert_equal(a.dtype, jnp.bfloat16), (final, ys))
    up = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), rounded(tree))
    want = jax.jit(lambda p, x, s: OPS[kind](p, x, s))(up(params), up(xs), up(state))
    got = jax.tree.map(lambda a: np.asarray(a, np.float32), (final, ys))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2**-7, atol=2**-8), got, want)


@pytest.mark.parametrize("precompute", [False, True])
@pytest.mark.slow
def test_elman_scan_equals_autodiff_of_the_cell(key, precompute):
    """``nn.RNN``'s scan: outputs and gradients, held steps and reverse included."""
    params, state, xs = random_case(key, "rnn", (B, T, IN), H)
    kw = dict(reverse=True, lengths=LENGTHS, precompute_inputs=precompute)
    fused = lambda p, x, s: _rnn_scan.elman(p, x, s, **kw)
    autodiff = lambda p, x, s: F.rnn(F.rnn_cell, p, x, s, **kw)
    grad = lambda fn: jax.jit(jax.value_and_grad(_loss(fn, key), argnums=(0, 1, 2)))
    jax.tree.map(_close, grad(fused)(params, xs, state), grad(autodiff)(params, xs, state))
    jax.tree.map(_close, jax.jit(fused)(params, xs, state), jax.jit(autodiff)(params, xs, state))
