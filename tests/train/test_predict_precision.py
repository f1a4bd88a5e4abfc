"""``predict(precision=...)``: the model run as ``fit``'s step runs it at that precision.

The hardware is faked as in ``test_precision_speed_path.py`` (``_hardware.native_bfloat16``);
on a CPU with native bfloat16 the float32 model's matmuls round their operands, checked
against an independent float64 MLP on bfloat16-rounded operands.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from nnjax import _hardware
from nnjax.nn import MLP
from nnjax.train import compiled, precision
from nnjax.train.evaluate import evaluate
from nnjax.train.prediction import predict
from nnjax.train.sweep import ensemble_predict, member_predictions, sweep

X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)


def _model():
    return MLP(8, (16,), 3, rngs=nnx.Rngs(0))


def _reference(model, x, rounded):
    """The MLP (ReLU) in float64 numpy; with ``rounded``, on bfloat16-rounded operands."""
    r = (lambda a: a.astype(ml_dtypes.bfloat16)) if rounded else (lambda a: a)
    layers = nnx.to_pure_dict(nnx.state(model, nnx.Param))["layers"]
    h = np.asarray(x, np.float64)
    for i, layer in sorted(layers.items()):
        kernel = np.asarray(r(np.asarray(layer["kernel"])), np.float64)
        h = np.asarray(r(h.astype(np.float32)), np.float64) @ kernel + np.asarray(layer["bias"])
        h = np.maximum(h, 0.0) if i < len(layers) - 1 else h
    return h


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)


def test_bfloat16_rounds_the_matmul_operands_where_the_cpu_has_them(native):
    model = _model()
    got = predict(model, X, batch_size=16, precision="bfloat16")
    assert got.dtype == np.float32
    ref = _reference(model, X, rounded=True)
    # a hidden value may round to the neighbouring bfloat16 (float32 sums in another
    # order): atol of a few bfloat16 steps of the outputs' scale
    np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max())
    plain = predict(model, X, batch_size=16)
    np.testing.assert_allclose(plain, _reference(model, X, rounded=False), rtol=1e-5, atol=1e-6)
    assert np.abs(got - plain).max() > 1e-4  # rounded, unlike float32's


def test_a_bfloat16_model_on_a_gpu_returns_float32_outputs(native, monkeypatch):
    # as on a GPU: the model cast to bfloat16 (nothing rounds only the operands)
    dtype = lambda p, backend=None: None if p is None else jnp.dtype(p)
    monkeypatch.setattr(precision, "compute_dtype", dtype)
    monkeypatch.setattr(precision, "rounds_matmul_operands", lambda p, backend=None: False)
    model = _model()
    got = predict(model, X, batch_size=16, precision="bfloat16")
    assert got.dtype == np.float32
    graphdef, state = nnx.split(model)
    state = jax.tree.map(lambda a: a.astype(jnp.bfloat16), state)  # the model's floats
    ref = np.asarray(nnx.merge(graphdef, state)(X.astype(jnp.bfloat16)), np.float32)
    np.testing.assert_allclose(got, ref, rtol=2e-2, atol=2e-2 * np.abs(ref).max())
    assert np.abs(got - predict(model, X, batch_size=16)).max() > 1e-4


def test_evaluate_and_predict_agree_at_the_same_precision(native):
    # one layer: no hidden value to round, so two programs' float32 sums (in any order)
    # give the same bfloat16 products' results to float32 precision
    model = MLP(8, (), 3, rngs=nnx.Rngs(0))
    y = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    out = predict(model, X, batch_size=16, precision="bfloat16")
    logs = evaluate(model, (X, y), loss="mse", metrics=[], batch_size=16, precision="bfloat16")
    np.testing.assert_allclose(logs["loss"], np.mean((out - y) ** 2), rtol=1e-5, atol=1e-7)
    plain = evaluate(model, (X, y), loss="mse", metrics=[], batch_size=16)["loss"]
    assert abs(plain - logs["loss"]) > 1e-4 * plain  # the precision was applied


@pytest.mark.parametrize("batch_size", [5, 16, 24])
def test_a_small_model_predicts_in_batches_of_a_few_rows_a_device(native, batch_size):
    # jaxlib 0.8 and 0.9 compiled these loops of bfloat16 matmuls as one small-loop kernel
    # without bfloat16 matmuls (UNIMPLEMENTED) on 4 devices: nnjax.functional._small_loop_dots
    model = MLP(8, (), 3, rngs=nnx.Rngs(0))
    got = predict(model, X, batch_size=batch_size, precision="bfloat16")
    ref = _reference(model, X, rounded=True)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_float32_and_none_share_one_program_and_a_second_call_compiles_nothing(native):
    model = _model()
    first = predict(model, X, batch_size=16, precision="bfloat16")
    plain = predict(model, X, batch_size=16)
    traces = compiled.TRACES.count
    np.testing.assert_array_equal(predict(model, X, batch_size=16, precision="float32"), plain)
    np.testing.assert_array_equal(predict(model, X, batch_size=16, precision="bfloat16"), first)
    assert compiled.TRACES.count == traces


def test_where_bfloat16_is_emulated_it_warns_and_predicts_as_float32(monkeypatch):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    model = _model()
    with pytest.warns(UserWarning, match="precision='bfloat16' computes in float32"):
        got = predict(model, X, batch_size=16, precision="bfloat16")
    np.testing.assert_array_equal(got, predict(model, X, batch_size=16))


@pytest.mark.parametrize("bad", ["half", "bf16", jnp.bfloat16, 16])
def test_an_unknown_precision_is_refused_before_anything_compiles(bad):
    traces = compiled.TRACES.count
    with pytest.raises(ValueError, match=r"precision must be None, 'float32', 'bfloat16'"):
        predict(_model(), X, precision=bad)
    assert compiled.TRACES.count == traces


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_a_sweeps_members_predict_at_the_precision_as_predict_does(native):
    # one layer (no hidden value to round): the two programs agree to float32 precision
    y = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    result = sweep(lambda rngs: MLP(8, (), 3, rngs=rngs), (X, y), loss="mse", metrics=(),
                   seeds=[0, 1], batch_size=40, epochs=0)  # fmt: skip
    stacked = member_predictions(result, X, precision="bfloat16")
    assert stacked.dtype == jnp.float32
    for i in range(2):
        ref = predict(result.member(i), X, batch_size=40, precision="bfloat16")
        np.testing.assert_allclose(stacked[i], ref, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(stacked - member_predictions(result, X))).max() > 1e-4
    mean = ensemble_predict(result, X, precision="bfloat16")
    np.testing.assert_allclose(mean, np.mean(stacked, axis=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="precision must be None"):
        ensemble_predict(result, X, precision="half")
