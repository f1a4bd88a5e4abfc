"""``mc_dropout_predict(precision=...)``: each pass computed as ``predict`` computes it.

The hardware is faked as in ``test_predict_precision.py`` (``_hardware.native_bfloat16``):
on a CPU with native bfloat16 the float32 model's matmuls round their operands.
"""

import numpy as np
import pytest
from flax import nnx

from nnjax import _hardware
from nnjax.nn import MLP, Dense
from nnjax.train import mc_dropout
from nnjax.train.prediction import predict

X = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)


class InputDropout(nnx.Module):
    """``Dense(dropout(x))``, its traces counted by ``count()``."""

    def __init__(self, rate, *, rngs):
        self.dropout = nnx.Dropout(rate, rngs=rngs)
        self.dense = Dense(8, 3, rngs=rngs)
        traces: list[int] = []  # outside the graph: its (static) attributes do not change
        self.count = lambda: len(traces)
        self.on_call = lambda: traces.append(1)

    def __call__(self, x):
        self.on_call()
        return self.dense(self.dropout(x))


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)


def test_without_dropout_the_mean_is_predicts_output_at_that_precision(native):
    model = MLP(8, (16,), 3, rngs=nnx.Rngs(0))
    mean, std = mc_dropout.mc_dropout_predict(model, X, n_samples=3, precision="bfloat16")
    np.testing.assert_array_equal(std, 0.0)
    want = predict(model, X, precision="bfloat16")
    np.testing.assert_allclose(mean, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    plain = predict(model, X)
    assert np.abs(mean - plain).max() > 1e-4  # the operands were rounded


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_the_samples_are_float32s_masks_at_bfloat16_precision(native):
    model = InputDropout(0.5, rngs=nnx.Rngs(0))
    low = mc_dropout.mc_dropout_samples(model, X, n_samples=4, seed=3, precision="bfloat16")
    full = mc_dropout.mc_dropout_samples(model, X, n_samples=4, seed=3)
    assert low.dtype == np.float32 and low.shape == full.shape == (4, 12, 3)
    # the same masks: within bfloat16's rounding of the same passes, not beyond
    np.testing.assert_allclose(low, full, rtol=2e-2, atol=2e-2 * np.abs(full).max())
    assert np.abs(low - full).max() > 1e-4
    assert not np.allclose(low[0], low[1])  # still independent masks


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_float32_and_none_share_one_program_and_a_second_call_compiles_nothing(native):
    model = InputDropout(0.5, rngs=nnx.Rngs(0))
    mc_dropout.mc_dropout_predict(model, X, n_samples=4, precision="bfloat16")
    plain = mc_dropout.mc_dropout_predict(model, X, n_samples=4)
    traces = model.count()
    again = mc_dropout.mc_dropout_predict(model, X + 1, n_samples=4, seed=1, precision="bfloat16")
    same = mc_dropout.mc_dropout_predict(model, X, n_samples=4, precision="float32")
    assert model.count() == traces
    assert np.all(np.isfinite(again[0]))
    for a, b in zip(same, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_where_bfloat16_is_emulated_it_warns_and_computes_in_float32(monkeypatch):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: False)
    model = InputDropout(0.5, rngs=nnx.Rngs(0))
    with pytest.warns(UserWarning, match="precision='bfloat16' computes in float32"):
        got = mc_dropout.mc_dropout_samples(model, X, n_samples=2, precision="bfloat16")
    np.testing.assert_array_equal(got, mc_dropout.mc_dropout_samples(model, X, n_samples=2))


@pytest.mark.parametrize("op", [mc_dropout.mc_dropout_predict, mc_dropout.mc_dropout_samples])
@pytest.mark.parametrize("bad", ["half", "bf16", 16])
def test_an_unknown_precision_is_refused_before_anything_traces(op, bad):
    model = InputDropout(0.5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"precision must be None, 'float32', 'bfloat16'"):
        op(model, X, n_samples=2, precision=bad)
    assert model.count() == 0


def test_precision_is_keyword_only():
    model = InputDropout(0.5, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError):
        mc_dropout.mc_dropout_predict(model, X, 2, 0, "bfloat16")  # type: ignore[misc]
