"""The recurrences' bfloat16 matmuls under ``precision="bfloat16"``.

Only in a library program whose matmuls run on YNNPACK (``_conv_compiler.ynn_matmuls``)
and inside ``_bfloat16_dot.bfloat16_operands``: there ``F.lstm``'s weight gradient sums
bfloat16 products in float32 (and above ``BFLOAT16_SCAN_ROWS`` rows its per-step
matmuls do), and ``F.gru``'s weight gradients (and above its own threshold its
recurrent matmuls); both keep the stacks between their scans in bfloat16
(``Rounding.residuals``; ``test_recurrent_residuals.py``); everything else computes in
float32.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import nnjax.functional as F
from nnjax.functional import _bfloat16_dot, _conv_compiler, _gru_scan, _lstm_scan
from nnjax.functional.recurrent import gru_cell_init, lstm_cell_init

from ._backend import requires_library_programs
from ._hlo import bfloat16_dot_computations, skip_without_ynn_matmuls

BF16, F32 = jnp.bfloat16, jnp.float32


def _f64(a):
    return np.asarray(jnp.asarray(a).astype(F32), np.float64)


def _rounded(a):
    """``a`` rounded to bfloat16, as float64: what the bfloat16 matmul multiplies."""
    return _f64(jnp.asarray(a).astype(BF16))


def _weight_grad_case(key, batch=6):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (5, batch, 24)), jax.random.normal(k2, (5, batch, 32))


def test_rounded_weight_grad_sums_bfloat16_products_in_float32(key):
    inputs, d_pre = _weight_grad_case(key)
    dw, db = jax.jit(_lstm_scan.weight_grad, static_argnums=(2, 3))(inputs, d_pre, F32, True)
    assert dw.dtype == F32 and dw.shape == (24, 32)
    want = np.einsum("tbi,tbo->io", _rounded(inputs), _rounded(d_pre))
    np.testing.assert_allclose(_f64(dw), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    dw32, db32 = _lstm_scan.weight_grad(inputs, d_pre, F32)
    np.testing.assert_array_equal(np.asarray(db), np.asarray(db32))  # the bias sum: unrounded
    assert not np.array_equal(np.asarray(dw), np.asarray(dw32))


@pytest.mark.devices(2)
def test_rounded_weight_grad_keeps_a_split_batch_split(key):
    """Contracted over ``(T, B)`` unflattened: each device sums its rows, no gather."""
    inputs, d_pre = _weight_grad_case(key, batch=8)
    want = _lstm_scan.weight_grad(inputs, d_pre, F32, True)[0]
    mesh = jax.make_mesh((2,), ("batch",), axis_types=(AxisType.Auto,))
    split = NamedSharding(mesh, PartitionSpec(None, "batch"))
    inputs, d_pre = jax.device_put((inputs, d_pre), split)
    grad = jax.jit(lambda a, d: _lstm_scan.weight_grad(a, d, F32, True)[0])
    hlo = grad.lower(inputs, d_pre).compile().as_text()
    assert "all-gather" not in hlo and "all-reduce" in hlo
    got, scale = np.asarray(grad(inputs, d_pre)), float(jnp.abs(want).max())
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5 * scale)


def _lstm_loss_grads(key, *, rounding: bool, eigen_dots: bool, batch: int = 4):
    """An LSTM loss and its gradients (every argument) in a library program."""
    params = lstm_cell_init(key, 12, 16)
    xs = jax.random.normal(jax.random.key(1), (batch, 7, 12))
    h0 = jax.random.normal(jax.random.key(2), (batch, 16))
    state = F.LSTMState(h0, jnp.zeros((batch, 16)))
    lengths = jnp.array([7, 3, 5, 7] * (batch // 4))

    def loss(p, xs, state):
        with _bfloat16_dot.bfloat16_operands(rounding):
            last, ys = F.lstm(p, xs, state, lengths=lengths)
        return jnp.sum(ys**2) + jnp.sum(last.h * last.c)

    value_and_grad = jax.value_and_grad(loss, argnums=(0, 1, 2))
    return _conv_compiler.jit(value_and_grad, eigen_dots=eigen_dots)(params, xs, state)


def _lstm_grads(key, **kwargs):
    return _lstm_loss_grads(key, **kwargs)[1]


def _close_to_bfloat16_operands(got, want):
    """Within a bfloat16 operand's error (relative to each array's scale), not equal."""
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        scale = np.abs(_f64(b)).max()
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=2**-5, atol=2**-5 * scale)
    assert not all(
        np.array_equal(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want))
    )


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_lstm_backward_rounds_only_on_ynnpack_matmuls_under_bfloat16_operands(key):
    want = _lstm_loss_grads(key, rounding=False, eigen_dots=False)
    got = _lstm_loss_grads(key, rounding=True, eigen_dots=False)
    # at BFLOAT16_SCAN_ROWS rows and below the forward pass is float32's: the same loss
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    # the backward reads bfloat16 residuals, and its weight gradients are bfloat16
    # products with float32 sums: every gradient within a bfloat16 operand's error
    _close_to_bfloat16_operands(got[1], want[1])
    pairs = zip(jax.tree.leaves(got[1]), jax.tree.leaves(want[1]), strict=True)
    assert not any(np.array_equal(a, b) for a, b in pairs)  # each of them
    # on Eigen's matmuls (which would widen bfloat16 operands) nothing is rounded
    eigen = _lstm_grads(key, rounding=True, eigen_dots=True)
    for a, b in zip(jax.tree.leaves(eigen), jax.tree.leaves(want[1]), strict=True):
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-6, atol=1e-6)


def test_lstm_weight_gradient_stays_float32_outside_library_programs(key):
    params = lstm_cell_init(key, 3, 8)
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))

    def loss(p, rounding):
        with _bfloat16_dot.bfloat16_operands(rounding):
            return jnp.sum(F.lstm(p, xs)[1] ** 2)

    plain = jax.jit(jax.grad(loss), static_argnums=1)
    for a, b in zip(jax.tree.leaves(plain(params, True)), jax.tree.leaves(plain(params, False))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_lstm_of_more_rows_multiplies_bfloat16_operands_in_its_scans_too(key):
    rows = _lstm_scan.BFLOAT16_SCAN_ROWS + 8
    want = _lstm_loss_grads(key, rounding=False, eigen_dots=False, batch=rows)
    got = _lstm_loss_grads(key, rounding=True, eigen_dots=False, batch=rows)
    # the loss and every gradient: float32 sums of bfloat16 operands in both scans
    _close_to_bfloat16_operands(got[0], want[0])
    _close_to_bfloat16_operands(got[1], want[1])
    # the input's and the initial state's gradients come through the rounded scan
    assert not np.array_equal(np.asarray(got[1][1]), np.asarray(want[1][1]))
    assert not np.array_equal(np.asarray(got[1][2].h), np.asarray(want[1][2].h))
    # at BFLOAT16_SCAN_ROWS rows and below the scans stay float32: the same loss
    few = _lstm_loss_grads(key, rounding=True, eigen_dots=False)
    np.testing.assert_array_equal(
        np.asarray(few[0]), np.asarray(_lstm_loss_grads(key, rounding=False, eigen_dots=False)[0])
    )


@requires_library_programs
@pytest.mark.parametrize(
    "batch",
    [
        _gru_scan.BFLOAT16_SCAN_ROWS,
        pytest.param(_gru_scan.BFLOAT16_SCAN_ROWS + 4, marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_gru_multiplies_bfloat16_operands_in_its_weight_gradients_and_scans(key, batch):
    params = gru_cell_init(key, 12, 16)
    xs = jax.random.normal(jax.random.key(1), (batch, 7, 12))
    h0 = jax.random.normal(jax.random.key(2), (batch, 16))
    lengths = jnp.array([7, 3, 5, 7] * (batch // 4))

    def loss_grads(rounding: bool, eigen_dots: bool = False):
        def loss(p, xs, h0):
            with _bfloat16_dot.bfloat16_operands(rounding):
                last, ys = F.gru(p, xs, h0, lengths=lengths)
            return jnp.sum(ys**2) + jnp.sum(last**2)

        value_and_grad = jax.value_and_grad(loss, argnums=(0, 1, 2))
        return _conv_compiler.jit(value_and_grad, eigen_dots=eigen_dots)(params, xs, h0)

    want = loss_grads(False)
    got = loss_grads(True)
    if batch > _gru_scan.BFLOAT16_SCAN_ROWS:  # the scans' matmuls too: the loss rounds
        _close_to_bfloat16_operands(got[0], want[0])
    else:  # the forward pass is float32's
        np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    _close_to_bfloat16_operands(got[1], want[1])
    for name in ("w_x", "w_h"):  # both weight gradients are bfloat16 products
        assert not np.array_equal(np.asarray(got[1][0][name]), np.asarray(want[1][0][name]))
    # on Eigen's matmuls nothing is rounded
    eigen = loss_grads(True, eigen_dots=True)
    for a, b in zip(jax.tree.leaves(eigen), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-6, atol=1e-6)


def test_rounding_follows_the_program_and_the_rows():
    none = _lstm_scan.Rounding(False, False, False)
    assert _lstm_scan.rounding_for(64) == none  # no program
    with _conv_compiler.library_convolutions(), _bfloat16_dot.bfloat16_operands():
        assert _lstm_scan.rounding_for(_lstm_scan.BFLOAT16_SCAN_ROWS) == (True, False, True)
        assert _lstm_scan.rounding_for(_lstm_scan.BFLOAT16_SCAN_ROWS + 1) == (True, True, True)
        with _conv_compiler.eigen_matmuls():
            assert _lstm_scan.rounding_for(64) == none
        assert _lstm_scan.rounding_for(1, scan_rows=0) == (True, True, True)
        # a per-step weight matrix this wide is bfloat16's from BFLOAT16_SCAN_MIN_ROWS rows
        wide, rows = _lstm_scan.BFLOAT16_SCAN_WEIGHTS, _lstm_scan.BFLOAT16_SCAN_MIN_ROWS
        assert _lstm_scan.rounding_for(rows, weights=wide) == (True, True, True)
        assert _lstm_scan.rounding_for(rows - 1, weights=wide) == (True, False, True)
        assert _lstm_scan.rounding_for(rows, weights=wide - 1) == (True, False, True)
        assert _lstm_scan.rounding_for(rows, 0, weights=wide - 1) == (True, True, True)
        with _conv_compiler.eigen_matmuls():
            assert _lstm_scan.rounding_for(rows, weights=wide) == none


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_rounded_weight_gradient_is_a_bfloat16_matmul_in_the_compiled_program(key):
    skip_without_ynn_matmuls()
    params = lstm_cell_init(key, 16, 32)

    def bfloat16_dots(rows: int, eigen_dots: bool = False) -> int:
        """Computations of the program that multiply two bfloat16 parameters."""
        xs = jnp.ones((rows, 6, 16))

        def loss(p):
            with _bfloat16_dot.bfloat16_operands():
                return jnp.sum(F.lstm(p, xs)[1])

        step = _conv_compiler.jit(jax.grad(loss), eigen_dots=eigen_dots)
        return bfloat16_dot_computations(step.lower(params).compile().as_text())

    assert bfloat16_dots(8) == 1  # the weight gradient
    # and the forward and backward scans' per-step matmuls
    assert bfloat16_dots(_lstm_scan.BFLOAT16_SCAN_ROWS + 8) == 3
    assert bfloat16_dots(8, eigen_dots=True) == 0


def _wide_hidden(weights_of_hidden) -> int:
    """The smallest hidden size whose per-step weight matrix is ``BFLOAT16_SCAN_WEIGHTS`` wide."""
    return next(
        h for h in range(1, 1024) if weights_of_hidden(h) >= _lstm_scan.BFLOAT16_SCAN_WEIGHTS
    )


@requires_library_programs
@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_wide_recurrences_multiply_in_bfloat16_from_few_rows(key, cell):
    """A per-step weight matrix of ``BFLOAT16_SCAN_WEIGHTS`` elements: bfloat16 scans at 8 rows."""
    skip_without_ynn_matmuls()
    rows, features = _lstm_scan.BFLOAT16_SCAN_MIN_ROWS, 16
    if cell == "lstm":  # [x, h] @ (in + H, 4H) per step
        init, fn = lstm_cell_init, F.lstm
        hidden = _wide_hidden(lambda h: (features + h) * 4 * h)
    else:  # h @ (H, 3H) per step
        init, fn = gru_cell_init, F.gru
        hidden = _wide_hidden(lambda h: 3 * h * h)

    def bfloat16_dots(rows: int, hidden: int) -> int:
        params = init(key, features, hidden)
        xs = jnp.ones((rows, 3, features))

        def loss(p):
            with _bfloat16_dot.bfloat16_operands():
                return jnp.sum(fn(p, xs)[1])

        step = _conv_compiler.jit(jax.grad(loss))
        return bfloat16_dot_computations(step.lower(params).compile().as_text())

    weight_grads = 1 if cell == "lstm" else 2
    assert bfloat16_dots(rows, hidden) == weight_grads + 2  # and both scans' matmuls
    assert bfloat16_dots(rows - 1, hidden) == weight_grads
    assert bfloat16_dots(rows, hidden - 1) == weight_grads


@pytest.mark.parametrize("eigen_dots", [False, True])
def test_matmul_library_of_the_traced_program_is_known(eigen_dots):
    seen = []

    def fn(x):
        seen.append(_conv_compiler.ynn_matmuls())
        return x + 1.0

    _conv_compiler.jit(fn, eigen_dots=eigen_dots)(jnp.ones(3))
    jax.jit(fn)(jnp.ones(3))
    library = bool(_conv_compiler.compiler_options())
    assert seen == [library and not eigen_dots, False]
