"""The recurrences' stacks between their scans in bfloat16 (``Rounding.residuals``).

Under ``precision="bfloat16"`` on YNNPACK's matmuls, ``F.lstm`` keeps its cell states
and gates, ``F.gru`` its gates and ``hn``, and both backward scans their pre-activation
gradients as bfloat16 bits: each backward pass against a float64 NumPy one from the
same residuals, and over a batch split across devices the scans stay per device.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import nnjax.functional as F
from nnjax.functional import _bfloat16_dot, _conv_compiler, _gru_scan, _lstm_scan
from nnjax.functional.recurrent import gru_cell_init, lstm_cell_init

from ._backend import requires_library_programs
from .test_recurrent_bfloat16 import _f64, _rounded


def _in_scan_order(reverse: bool):
    """``(T, ...)`` arrays in the order a scan of direction ``reverse`` visits their steps."""
    return (lambda a: a[::-1]) if reverse else (lambda a: a)


def _lstm_backward_reference(saved, cotangents, reverse):
    """A float64 NumPy LSTM backward pass from the saved residuals (widened), unmasked."""
    w_x, w_h, _, xs_t, h0, c0, _, hs, cs, acts = saved
    order = _in_scan_order(reverse)
    w_x, w_h, h0, c0 = (_f64(a) for a in (w_x, w_h, h0, c0))
    xs_t, hs = (order(_f64(a)) for a in (xs_t, hs))
    wide = lambda a: order(_f64(_lstm_scan._unpack(a))[:, :, 0])
    c, (i, f, g, o) = wide(cs), (wide(a) for a in acts)
    d_hs, dh, dc = order(_f64(cotangents[0])), _f64(cotangents[1]), _f64(cotangents[2])
    dz = np.zeros((*hs.shape[:2], w_h.shape[1]))
    for t in reversed(range(hs.shape[0])):
        dh = dh + d_hs[t]
        tanh_c = np.tanh(c[t])
        dc = dc + dh * o[t] * (1 - tanh_c**2)
        c_prev = c[t - 1] if t else c0
        dz[t] = np.concatenate(
            [dc * g[t] * i[t] * (1 - i[t]), dc * c_prev * f[t] * (1 - f[t]),
             dc * i[t] * (1 - g[t] ** 2), dh * tanh_c * o[t] * (1 - o[t])], axis=-1,
        )  # fmt: skip
        dh, dc = dz[t] @ w_h.T, dc * f[t]
    inputs = np.concatenate([xs_t, np.concatenate([h0[None], hs[:-1]])], axis=-1)
    dw = np.einsum("tbi,tbg->ig", _rounded(inputs), _rounded(dz))
    dxs = order(np.einsum("tbg,ig->tbi", _rounded(dz), _rounded(w_x)))
    return dw, _rounded(dz).sum(axis=(0, 1)), dxs, dh, dc


@pytest.mark.parametrize("reverse", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_lstm_backward_from_bfloat16_residuals_matches_a_float64_reference(key, reverse):
    """Gates, cell states and ``dz`` kept as bfloat16 bits, everything else float32."""
    k = jax.random.split(key, 6)
    params = lstm_cell_init(k[0], 5, 8)
    xs_t, h0, c0 = (jax.random.normal(kk, s) for kk, s in zip(k[1:4], [(6, 3, 5), (3, 8), (3, 8)]))
    d_hs, d_h, d_c = (jax.random.normal(kk, s) for kk, s in zip(k[3:], [(6, 3, 8), (3, 8), (3, 8)]))
    rounding = _lstm_scan.Rounding(weight_grad=True, residuals=True)
    weights = (params["w_x"], params["w_h"], params["b"])
    _, saved = _lstm_scan._lstm_fwd(*weights, xs_t, h0, c0, reverse, 1, False, rounding, None)
    assert saved[8].dtype == jnp.uint16 and all(a.dtype == jnp.uint16 for a in saved[9])
    grads = jax.jit(_lstm_scan._lstm_bwd, static_argnums=(0, 1, 2, 3))(
        reverse, 1, False, rounding, saved, (d_hs, d_h, d_c)
    )
    dw_x, dw_h, db, dxs, dh0, dc0, _ = (None if g is None else _f64(g) for g in grads)
    want_dw, want_db, want_dxs, want_dh0, want_dc0 = _lstm_backward_reference(
        saved, (d_hs, d_h, d_c), reverse
    )
    for got, want in [(dh0, want_dh0), (dc0, want_dc0)]:  # the float32 scan's
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # of bfloat16 dz (an element may round the other way from float32's value)
    for got, want in [(np.concatenate([dw_x, dw_h]), want_dw), (db, want_db), (dxs, want_dxs)]:
        np.testing.assert_allclose(got, want, rtol=2**-7, atol=2**-7 * np.abs(want).max())


def _gru_backward_reference(saved, cotangents, reverse):
    """A float64 NumPy GRU backward pass from the saved residuals (widened), unmasked."""
    (w_x, w_h, _, _), xs_t, h0, _, (hs, acts, hns) = saved
    order = _in_scan_order(reverse)
    w_x, w_h, h0 = (_f64(a) for a in (w_x, w_h, h0))
    xs_t, hs = (order(_f64(a)) for a in (xs_t, hs))
    r, z, n = (order(_f64(_lstm_scan._unpack(acts[:, :, k]))) for k in range(3))
    hn = order(_f64(_lstm_scan._unpack(hns[:, :, 0])))
    d_hs, dh = order(_f64(cotangents[0])), _f64(cotangents[1])
    h_prev = np.concatenate([h0[None], hs[:-1]])
    dgx, dgh = (np.zeros((*hs.shape[:2], w_h.shape[1])) for _ in range(2))
    for t in reversed(range(hs.shape[0])):
        dh = dh + d_hs[t]
        dan = dh * (1 - z[t]) * (1 - n[t] ** 2)
        dar, daz = dan * hn[t] * r[t] * (1 - r[t]), dh * (h_prev[t] - n[t]) * z[t] * (1 - z[t])
        dgx[t], dgh[t] = (np.concatenate([dar, daz, a], axis=-1) for a in (dan, dan * r[t]))
        dh = dh * z[t] + dgh[t] @ w_h.T
    gate = np.concatenate([np.ones_like(r), np.ones_like(r), r], axis=-1)
    dw_x = np.einsum("tbi,tbg->ig", _rounded(xs_t), _rounded(dgx))
    dw_h = np.einsum("tbi,tbg->ig", _rounded(h_prev), _rounded(_rounded(dgx) * gate))
    dxs = order(np.einsum("tbg,ig->tbi", _rounded(dgx), _rounded(w_x)))
    sums = _rounded(dgx).sum(axis=(0, 1)), (_rounded(dgx) * gate).sum(axis=(0, 1))
    return (dw_x, dw_h, *sums), dxs, dh


@pytest.mark.parametrize("reverse", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_gru_backward_from_bfloat16_residuals_matches_a_float64_reference(key, reverse):
    k = jax.random.split(key, 5)
    p = gru_cell_init(k[0], 5, 8)
    weights = (p["w_x"], p["w_h"], p["b_x"], p["b_h"])
    xs_t, h0, d_hs, d_h = (
        jax.random.normal(kk, s) for kk, s in zip(k[1:], [(6, 3, 5), (3, 8), (6, 3, 8), (3, 8)])
    )
    rounding = _lstm_scan.Rounding(weight_grad=True, residuals=True)
    _, saved = _gru_scan._gru_fwd(weights, xs_t, h0, reverse, 1, False, rounding, None)
    assert {a.dtype for a in saved[4][1:]} == {jnp.dtype(jnp.uint16)}
    bwd = jax.jit(_gru_scan._gru_bwd, static_argnums=(0, 1, 2, 3))
    (dw_x, dw_h, db_x, db_h), dxs, dh0, _ = bwd(reverse, 1, False, rounding, saved, (d_hs, d_h))
    want = _gru_backward_reference(saved, (d_hs, d_h), reverse)
    (w_dw_x, w_dw_h, w_db_x, w_db_h), w_dxs, w_dh0 = want
    np.testing.assert_allclose(_f64(dh0), w_dh0, rtol=1e-5, atol=1e-5 * np.abs(w_dh0).max())
    pairs = [(dw_x, w_dw_x), (dw_h, w_dw_h), (db_x, w_db_x), (db_h, w_db_h), (dxs, w_dxs)]
    for got, want in pairs:  # of bfloat16 dgx
        np.testing.assert_allclose(_f64(got), want, rtol=2**-7, atol=2**-7 * np.abs(want).max())


def _computations(hlo: str) -> dict[str, str]:
    """An HLO text's computations by name (with their ``%``), each its text."""
    found: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in hlo.splitlines():
        if line.endswith("{") and not line.startswith(" "):  # a computation's header
            lines = found.setdefault(line.split(" ")[-1 if line.startswith("ENTRY") else 0], [])
        lines.append(line)
    return {name: "\n".join(text) for name, text in found.items()}


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.devices(2)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_split_batch_scans_hold_no_collective(key, cell):
    """A sum over the batch inside the backward scan all-reduced at every step (the LSTM
    step over two devices took 1.3-1.6x its time): every collective comes after the loops."""
    init, fn = (lstm_cell_init, F.lstm) if cell == "lstm" else (gru_cell_init, F.gru)
    params = init(key, 12, 16)
    mesh = jax.make_mesh((2,), ("batch",), axis_types=(AxisType.Auto,))
    xs = jax.random.normal(jax.random.key(1), (8, 7, 12))
    xs = jax.device_put(xs, NamedSharding(mesh, PartitionSpec("batch")))

    def loss(p, xs):
        with _bfloat16_dot.bfloat16_operands():
            return jnp.sum(fn(p, xs)[1] ** 2)

    hlo = _conv_compiler.jit(jax.grad(loss)).lower(params, xs).compile().as_text()
    assert "u16[" in hlo  # the residuals are packed in this program
    computations = _computations(hlo)
    bodies = re.findall(r"body=(%[\w.-]+)", hlo)
    assert len(bodies) >= 2  # the forward and the backward scan
    for body in bodies:
        assert not re.search(r"all-(reduce|gather)", computations[body]), body
    assert "all-reduce" in hlo  # the weight and bias gradients' sums
