"""PyTorch references for the recurrent ops (test helper, private).

Builds float64 ``torch.nn.{RNN,LSTM,GRU}Cell`` / ``torch.nn.{RNN,LSTM,GRU}`` modules with
random weights and converts between their parameters and nnjax's layout:
``w_x = weight_ih.T``, ``w_h = weight_hh.T``; RNN/LSTM ``b = bias_ih + bias_hh``;
GRU ``b_x = bias_ih``, ``b_h = bias_hh``. Carries use nnjax's structure: ``h`` for
RNN and GRU, ``LSTMState(h, c)`` (here a ``(h, c)`` tuple of tensors) for the LSTM.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import nnjax.functional as F

from ._torch_ref import assert_close, to_jax, to_numpy, to_torch, torch

KINDS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
CELLS = {"rnn": F.rnn_cell, "lstm": F.lstm_cell, "gru": F.gru_cell}
INITS = {"rnn": F.rnn_cell_init, "lstm": F.lstm_cell_init, "gru": F.gru_cell_init}
_CELL_MODULES = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}
_SEQ_MODULES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def make_module(kind: str, in_features: int, hidden: int, *, sequence: bool, seed: int = 0):
    """A float64 torch cell (``sequence=False``) or one-layer batch-first sequence module.

    Weights are drawn from N(0, 0.5²) so the gates leave their linear range.
    """
    torch.manual_seed(seed)
    if sequence:
        cls = getattr(torch.nn, _SEQ_MODULES[kind])
        module = cls(in_features, hidden, batch_first=True)
    else:
        module = getattr(torch.nn, _CELL_MODULES[kind])(in_features, hidden)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


def _weights(module):
    suffix = "_l0" if isinstance(module, torch.nn.RNNBase) else ""
    return {
        n: getattr(module, f"{n}{suffix}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }


def params_from(kind: str, module) -> dict:
    """nnjax parameters (float64 JAX arrays; needs x64) equal to ``module``'s."""
    w = {n: to_numpy(t) for n, t in _weights(module).items()}
    params = {"w_x": w["weight_ih"].T, "w_h": w["weight_hh"].T}
    if kind == "gru":
        params |= {"b_x": w["bias_ih"], "b_h": w["bias_hh"]}
    else:
        params["b"] = w["bias_ih"] + w["bias_hh"]
    return {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}


def param_grads_from(kind: str, module) -> dict:
    """``module``'s parameter gradients (after ``backward``) in nnjax's layout."""
    w = _weights(module)
    grads = {"w_x": to_jax(w["weight_ih"].grad).T, "w_h": to_jax(w["weight_hh"].grad).T}
    if kind == "gru":
        grads |= {"b_x": to_jax(w["bias_ih"].grad), "b_h": to_jax(w["bias_hh"].grad)}
    else:  # b = bias_ih + bias_hh, so dL/db = dL/dbias_ih (= dL/dbias_hh)
        # equal up to PyTorch's rounding: float32 modules sum them in different orders
        ih, hh = to_numpy(w["bias_ih"].grad), to_numpy(w["bias_hh"].grad)
        np.testing.assert_allclose(ih, hh, rtol=1e-6, atol=1e-6 * np.abs(hh).max())
        grads["b"] = to_jax(w["bias_ih"].grad)
    return grads


def jax_carry(kind: str, h, c=None):
    """nnjax carry from JAX arrays ``h`` (and ``c`` for the LSTM)."""
    return F.LSTMState(h, c) if kind == "lstm" else h


def torch_carry(kind: str, carry, *, requires_grad: bool = True):
    """Torch leaves of a JAX carry: ``(h,)`` or ``(h, c)``."""
    leaves = (carry.h, carry.c) if kind == "lstm" else (carry,)
    return tuple(to_torch(leaf, requires_grad=requires_grad) for leaf in leaves)


def torch_cell_step(kind: str, module, x, carry: tuple):
    """One torch cell step; returns ``(new_carry_leaves, y)`` like nnjax's cells."""
    if kind == "lstm":
        h, c = module(x, carry)
        return (h, c), h
    h = module(x, carry[0])
    return (h,), h


def torch_sequence(kind: str, module, xs, carry: tuple | None, *, reverse: bool = False):
    """Runs a torch sequence module; returns ``(final_carry_leaves, ys (B, T, H))``.

    ``reverse=True`` runs on the time-flipped sequence and flips the outputs back, the
    meaning of ``reverse`` in nnjax's sequence ops.
    """
    if reverse:
        xs = torch.flip(xs, dims=(1,))
    state = None if carry is None else tuple(leaf.unsqueeze(0) for leaf in carry)
    if kind != "lstm" and state is not None:
        state = state[0]
    ys, final = module(xs, state)
    final = tuple(f[0] for f in final) if kind == "lstm" else (final[0],)
    if reverse:
        ys = torch.flip(ys, dims=(1,))
    return final, ys


def random_case(key, kind: str, shape: tuple[int, ...], hidden: int, dtype=jnp.float32):
    """Random (non-init) params, a non-zero carry and an input of ``shape`` (``(B, in)``
    for a cell, ``(B, T, in)`` for a sequence); perturbed so biases are non-zero."""
    kp, kh, kc, kx = jax.random.split(key, 4)
    params = INITS[kind](kp, shape[-1], hidden, dtype=dtype)
    params = {
        n: p + 0.3 * jax.random.normal(jax.random.fold_in(kp, i), p.shape, dtype)
        for i, (n, p) in enumerate(sorted(params.items()))
    }
    h = jax.random.normal(kh, (shape[0], hidden), dtype)
    carry = jax_carry(kind, h, jax.random.normal(kc, (shape[0], hidden), dtype))
    return params, carry, jax.random.normal(kx, shape, dtype)


def assert_matches_torch(key, kind, module, fn, torch_fn, params, carry, x) -> None:
    """Compares outputs and gradients of ``fn(params, carry, x)`` with torch, in float64.

    ``torch_fn(tx, tcarry_leaves)`` must return the torch outputs as a list in the
    order of ``jax.tree.leaves(fn(...))``. The loss is a random projection of every
    output, so every output and every gradient (w.r.t. params, carry and x) is checked.
    """
    out = fn(params, carry, x)
    cots = [jax.random.normal(jax.random.fold_in(key, i), a.shape, jnp.float64)
            for i, a in enumerate(jax.tree.leaves(out))]  # fmt: skip

    def loss(params, carry, x):
        return sum(jnp.sum(a * c) for a, c in zip(jax.tree.leaves(fn(params, carry, x)), cots))

    g_params, g_carry, g_x = jax.grad(loss, argnums=(0, 1, 2))(params, carry, x)

    tx = to_torch(x, requires_grad=True)
    tcarry = torch_carry(kind, carry)
    t_out = torch_fn(tx, tcarry)
    sum((a * to_torch(c)).sum() for a, c in zip(t_out, cots)).backward()

    assert len(t_out) == len(jax.tree.leaves(out))
    for a, t in zip(jax.tree.leaves(out), t_out):
        assert_close(a, t)
    assert_close(g_x, tx.grad)
    for g, t in zip(jax.tree.leaves(g_carry), tcarry):
        assert_close(g, t.grad)
    jax.tree.map(assert_close, g_params, param_grads_from(kind, module))
