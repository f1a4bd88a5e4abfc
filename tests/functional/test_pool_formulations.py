"""Every pooling formulation (reduce_window, reshape) against PyTorch, ties included."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import nnjax.functional as F
from nnjax.functional import _pool_formulations as forms
from nnjax.functional.pooling import pool_formulation

from ._compare import assert_matches_torch
from ._torch_ref import torch
from ._transforms import assert_transforms

TF = torch.nn.functional
FORMULATIONS = ("reduce_window", "reshape")
# Against PyTorch, XLA's own reduce_window runs in the slow step (tests/functional/test_pooling.py
# compares the default pick with PyTorch in the default run).
TORCH_FORMULATIONS = (pytest.param("reduce_window", marks=pytest.mark.slow), "reshape")
TOL = {np.float64: 1e-10, np.float32: 1e-5}
CASES = [
    # (spatial, window, padding); stride == window, so both formulations apply
    ((8,), (2,), "VALID"),
    ((7,), (3,), "SAME"),  # pads 1 after
    ((6, 8), (2, 2), "VALID"),
    ((7, 5), (2, 2), "VALID"),  # crops the last row and column
    ((7, 5), (3, 2), "SAME"),  # pads (1, 1) rows, (0, 1) columns
    ((4, 5, 3), (2, 2, 3), "SAME"),
]


def _pool(kind, nd, formulation, window, padding, include=False):
    name = f"{'max' if kind == 'max' else 'avg'}_pool{nd}d"
    extra = {} if kind == "max" else {"count_include_pad": include}
    op = getattr(F, name)
    return lambda x: op(x, window, padding=padding, formulation=formulation, **extra)


def _torch_pool(kind, x, window, padding, include=False):
    """Channels-last torch tensors; TF's SAME rule written out with F.pad."""
    nd = x.ndim - 2
    xc = x.movedim(-1, 1)
    pads = [(0, 0)] * nd
    if padding == "SAME":  # stride == window: pad to a multiple, the odd element after
        totals = [-(-n // w) * w - n for n, w in zip(xc.shape[2:], window)]
        pads = [(t // 2, t - t // 2) for t in totals]
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]  # torch pads the last axis first
    pool = getattr(TF, f"{'max' if kind == 'max' else 'avg'}_pool{nd}d")
    if kind == "max":
        return pool(TF.pad(xc, flat, value=-math.inf), window).movedim(1, -1)
    total = pool(TF.pad(xc, flat), window) * math.prod(window)
    count = math.prod(window)
    if not include:
        count = pool(TF.pad(torch.ones_like(xc), flat), window) * count
    return (total / count).movedim(1, -1)


def _distinct(shape, seed):
    values = np.random.default_rng(seed).permutation(math.prod(shape)).astype(np.float64)
    return values.reshape(shape) / 10.0


def _tied(shape, seed):
    """ReLU of small integers: most windows hold several equal maxima (zeros above all)."""
    values = np.random.default_rng(seed).integers(-3, 3, shape).astype(np.float64)
    return np.maximum(values, 0.0)


@pytest.mark.parametrize("formulation", TORCH_FORMULATIONS)
@pytest.mark.parametrize("kind", ["max", "avg", "avg_include_pad"])
@pytest.mark.parametrize(("spatial", "window", "padding"), CASES)
def test_matches_torch_outputs_and_grads(formulation, kind, spatial, window, padding):
    include = kind == "avg_include_pad"
    fn = _pool(kind, len(spatial), formulation, window, padding, include)
    torch_fn = lambda x: _torch_pool(kind, x, window, padding, include)
    assert_matches_torch(fn, torch_fn, (_distinct((2, *spatial, 3), 1),), tol=TOL)


@pytest.mark.parametrize("formulation", TORCH_FORMULATIONS)
@pytest.mark.parametrize(("spatial", "window", "padding"), CASES)
def test_max_pool_ties_route_to_one_element_as_in_torch(formulation, spatial, window, padding):
    x = _tied((2, *spatial, 3), 2)
    x[0] = 0.0  # every window tied
    fn = _pool("max", len(spatial), formulation, window, padding)
    torch_fn = lambda x: _torch_pool("max", x, window, padding)
    assert_matches_torch(fn, torch_fn, (x,), tol=TOL)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize(("spatial", "window", "padding"), CASES)
def test_formulations_agree_exactly_on_ties_float32(spatial, window, padding):
    """Same outputs and VJPs; reshape's JVP is the transpose of that VJP.

    (reduce_window's own JVP breaks ties in an unspecified order, so it is not compared.)
    """
    x = jnp.asarray(_tied((2, *spatial, 3), 3), jnp.float32)
    x = x.at[0].set(0.0)  # every window tied
    rng = np.random.default_rng(4)
    tangent = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)
    fns = {name: _pool("max", len(spatial), name, window, padding) for name in FORMULATIONS}
    cot = jnp.asarray(rng.standard_normal(jax.eval_shape(fns["reshape"], x).shape), jnp.float32)

    @jax.jit
    def run(x, tangent, cot):
        y, pullback = jax.vjp(fns["reduce_window"], x)
        y_reshape, pullback_reshape = jax.vjp(fns["reshape"], x)
        _, y_dot = jax.jvp(fns["reshape"], (x,), (tangent,))
        (grad,), (grad_reshape,) = pullback(cot), pullback_reshape(cot)
        return y, y_reshape, grad, grad_reshape, jnp.vdot(y_dot, cot), jnp.vdot(tangent, grad)

    y, y_reshape, grad, grad_reshape, jvp_dot, vjp_dot = run(x, tangent, cot)
    np.testing.assert_array_equal(y_reshape, y)
    np.testing.assert_array_equal(grad_reshape, grad)
    np.testing.assert_allclose(jvp_dot, vjp_dot, rtol=1e-5, atol=1e-5)


def test_max_pool_nan_routes_to_the_last_nan_as_in_torch():
    x = np.array([1.0, np.nan, 3.0, np.nan, 2.0, 5.0, np.nan, 0.0]).reshape(1, 2, 4, 1)
    fn = _pool("max", 2, "reshape", (2, 2), "VALID")
    y, grad = jax.value_and_grad(lambda x: jnp.sum(fn(x)))(jnp.asarray(x))
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    ty = TF.max_pool2d(tx, 2)
    ty.sum().backward()
    np.testing.assert_array_equal(
        np.isnan(fn(jnp.asarray(x))).ravel(), np.isnan(ty.detach().numpy()).ravel()
    )
    np.testing.assert_array_equal(grad, tx.grad.numpy().transpose(0, 2, 3, 1))
    assert np.isnan(y)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_reshape_check_grads_second_order(kind):
    x = _distinct((1, 5, 3, 2), 5)
    fn = _pool(kind, 2, "reshape", (2, 2), "SAME")
    with jax.enable_x64(True):
        check_grads(jax.jit(fn), (x,), order=2, modes=("fwd", "rev"), eps=1e-3)


@pytest.mark.parametrize("kind", ["max", pytest.param("avg", marks=pytest.mark.slow)])
def test_reshape_under_jit_vmap_grad_without_recompiling(kind):
    x = _distinct((2, 4, 6, 3), 6).astype(np.float32)
    assert_transforms(_pool(kind, 2, "reshape", (2, 3), "SAME"), x)


def test_auto_picks_reshape_on_cpu_for_non_overlapping_windows(monkeypatch):
    used = []
    for table in (forms.MAX, forms.SUM):
        for name, real in list(table.items()):
            spy = lambda *a, _name=name, _real=real: used.append(_name) or _real(*a)
            monkeypatch.setitem(table, name, spy)
    x = jnp.ones((1, 6, 6, 1))
    F.max_pool2d(x, 2)
    F.max_pool2d(x, 3, 2)  # overlapping
    F.avg_pool1d(x[:, 0], 3)
    F.max_pool2d(x, 2, formulation="reduce_window")
    expected = "reshape" if jax.default_backend() == "cpu" else "reduce_window"
    assert used == [expected, "reduce_window", expected, "reduce_window"]


def test_context_sets_the_auto_default(monkeypatch):
    used = []
    for name, real in list(forms.MAX.items()):
        spy = lambda *a, _name=name, _real=real: used.append(_name) or _real(*a)
        monkeypatch.setitem(forms.MAX, name, spy)
    x = jnp.ones((1, 6, 6, 1))
    with pool_formulation("reduce_window"):
        F.max_pool2d(x, 2)
        F.max_pool2d(x, 2, formulation="reshape")  # an explicit argument wins
    with pool_formulation("reshape"):
        F.max_pool2d(x, 3, 2)  # overlapping: reshape does not apply
    assert used == ["reduce_window", "reshape", "reduce_window"]
    with pytest.raises(ValueError, match=r"pool_formulation: `formulation` must be"):
        with pool_formulation("fft"):
            pass


def test_rule():
    assert forms.choose((32, 28, 28, 32), (2, 2), (2, 2), "cpu") == "reshape"
    assert forms.choose((32, 28, 28, 32), (2, 2), (1, 1), "cpu") == "reduce_window"
    assert forms.choose((32, 28, 28, 32), (2, 2), (2, 2), "gpu") == "reduce_window"
    assert forms.choose((32, 28, 28, 32), (4, 4), (4, 4), "cpu") == "reshape"
    assert forms.choose((32, 28, 28, 32), (7, 7), (7, 7), "cpu") == "reduce_window"  # 49 taps


def test_symbolic_batch_exports_with_reshape():
    (b,) = jax.export.symbolic_shape("b")
    fn = jax.jit(lambda x: F.max_pool2d(x, 2, formulation="reshape"))
    exported = jax.export.export(fn)(jax.ShapeDtypeStruct((b, 4, 6, 2), jnp.float32))
    x = _distinct((3, 4, 6, 2), 7).astype(np.float32)
    np.testing.assert_array_equal(exported.call(x), F.max_pool2d(x, 2, formulation="reduce_window"))


def test_bad_formulation_names_the_argument_and_value():
    x = jnp.ones((1, 6, 6, 1))
    with pytest.raises(ValueError, match=r"max_pool2d: `formulation` must be one of .*'fft'"):
        F.max_pool2d(x, 2, formulation="fft")
    with pytest.raises(
        ValueError,
        match=r"avg_pool2d: `formulation`='reshape' needs `stride` equal to `window`.*"
        r"window=\(3, 3\), stride=\(2, 2\)",
    ):
        F.avg_pool2d(x, 3, 2, formulation="reshape")
