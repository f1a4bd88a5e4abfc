"""F.lstm's per-step formulation (``_lstm_scan``: a custom VJP over the whole sequence)
against autodiff of ``F.rnn(F.lstm_cell, ...)``, PyTorch and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F

from ._recurrent_ref import make_module, param_grads_from, params_from, random_case
from ._torch_ref import torch

B, T, IN, H = 3, 5, 3, 4
LENGTHS = np.array([5, 2, 0])
# (reverse, lengths, zero initial state, unroll): every path through the scan.
CASES = [
    (False, None, False, 1),
    (True, LENGTHS, False, 2),
    (True, None, False, 1),
    (False, LENGTHS, False, 1),
    (False, None, True, 3),
]


def _loss(fn, key):
    """A random projection of every output (final h, final c, ys), so all are checked."""

    def loss(params, xs, state):
        leaves = jax.tree.leaves(fn(params, xs, state))
        cots = [jax.random.normal(jax.random.fold_in(key, i), a.shape, a.dtype)
                for i, a in enumerate(leaves)]  # fmt: skip
        return sum(jnp.sum(a * c) for a, c in zip(leaves, cots))

    return loss


def _fused_and_autodiff(reverse, lengths, zero_state, unroll):
    kw = dict(reverse=reverse, lengths=lengths, unroll=unroll, precompute_inputs=False)

    def fused(p, x, s):
        return F.lstm(p, x, None if zero_state else s, **kw)

    def autodiff(p, x, s):
        return F.rnn(F.lstm_cell, p, x, None if zero_state else s, **kw)

    return fused, autodiff


@pytest.mark.slow  # two compiled grads of scans per case: 10-35 s on a loaded 2-core machine
@pytest.mark.parametrize(("reverse", "lengths", "zero_state", "unroll"), CASES)
def test_outputs_and_grads_equal_autodiff_of_the_cell_float32(key, reverse, lengths, zero_state,
                                                              unroll):  # fmt: skip
    params, state, xs = random_case(key, "lstm", (B, T, IN), H)
    fused, autodiff = _fused_and_autodiff(reverse, lengths, zero_state, unroll)
    got = jax.jit(jax.value_and_grad(_loss(fused, key), argnums=(0, 1, 2)))(params, xs, state)
    want = jax.jit(jax.value_and_grad(_loss(autodiff, key), argnums=(0, 1, 2)))(params, xs, state)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)
    outs = jax.jit(fused)(params, xs, state), jax.jit(autodiff)(params, xs, state)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), *outs)


@pytest.mark.parametrize("reverse", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_matches_torch_float32(key, reverse):
    """float32 outputs and every gradient against nn.LSTM (float32 copy of its weights)."""
    module = make_module("lstm", IN, H, sequence=True).float()
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: np.asarray(a, np.float32), params_from("lstm", module))
    _, state, xs = random_case(key, "lstm", (B, T, IN), H)
    final, ys = jax.jit(lambda p, x, s: F.lstm(p, x, s, reverse=reverse))(params, xs, state)
    cot = jax.random.normal(key, ys.shape)
    g = jax.grad(lambda p, x, s: jnp.sum(F.lstm(p, x, s, reverse=reverse)[1] * cot), (0, 1, 2))
    g_params, g_xs, g_state = g(params, xs, state)

    tx = torch.tensor(np.asarray(xs), requires_grad=True)
    th, tc = (torch.tensor(np.asarray(a), requires_grad=True) for a in state)
    t_in = torch.flip(tx, dims=(1,)) if reverse else tx
    tys, (tfh, tfc) = module(t_in, (th.unsqueeze(0), tc.unsqueeze(0)))
    tys = torch.flip(tys, dims=(1,)) if reverse else tys
    (tys * torch.tensor(np.asarray(cot))).sum().backward()

    def close(a, t):
        t = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-5)

    close(ys, tys)
    close(final.h, tfh[0])
    close(final.c, tfc[0])
    close(g_xs, tx.grad)
    close(g_state.h, th.grad)
    close(g_state.c, tc.grad)
    with jax.enable_x64(True):
        expected = param_grads_from("lstm", module)
    jax.tree.map(close, g_params, expected)


@pytest.mark.slow  # finite differences of second order: 30-50 s on a loaded 2-core machine
@pytest.mark.parametrize(("reverse", "lengths"), [(False, None), (True, LENGTHS)])
def test_check_grads_first_and_second_order_reverse_mode(key, reverse, lengths):
    with jax.enable_x64(True):
        params, state, xs = random_case(key, "lstm", (B, 3, IN), H, jnp.float64)
        lengths = None if lengths is None else np.minimum(lengths, 3)
        fn = lambda p, x, s: F.lstm(p, x, s, reverse=reverse, lengths=lengths)
        check_grads(fn, (params, xs, state), order=2, modes=("rev",))


def test_forward_mode_is_available_through_rnn_of_the_cell(key):
    """The custom VJP has no JVP; ``F.rnn(F.lstm_cell, ...)`` (autodiff) is the way."""
    params, state, xs = random_case(key, "lstm", (B, T, IN), H)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: F.lstm(params, x, state)[1], (xs,), (xs,))
    _, tangent = jax.jvp(lambda x: F.rnn(F.lstm_cell, params, x, state)[1], (xs,), (xs,))
    assert tangent.shape == (B, T, H)


def test_jitted_grad_does_not_retrace(key):
    params, state, xs = random_case(key, "lstm", (B, T, IN), H)
    traces = []

    @jax.jit
    def grad(p, x, s):
        traces.append(1)
        return jax.grad(lambda p: jnp.sum(F.lstm(p, x, s, lengths=LENGTHS)[1] ** 2))(p)

    first = grad(params, xs, state)
    second = grad(jax.tree.map(lambda a: a * 0.5, params), xs * 2, state)
    assert len(traces) == 1
    assert not np.allclose(first["w_h"], second["w_h"])


@pytest.mark.slow  # ~10 s on a loaded 2-core machine
def test_bfloat16_grads_keep_dtype_and_follow_float32(key):
    params, state, xs = random_case(key, "lstm", (B, T, IN), H)
    loss = lambda p, x: jnp.sum(F.lstm(p, x, state)[1].astype(jnp.float32) ** 2)
    g16 = jax.jit(jax.grad(loss))(jax.tree.map(lambda a: a.astype(jnp.bfloat16), params),
                                  xs.astype(jnp.bfloat16))  # fmt: skip
    g32 = jax.grad(loss)(params, xs)
    for name in g32:
        assert g16[name].dtype == jnp.bfloat16
        scale = float(jnp.max(jnp.abs(g32[name])))
        np.testing.assert_allclose(
            np.asarray(g16[name], np.float32), g32[name], rtol=0.1, atol=0.05 * scale
        )
