"""``predict`` on fewer examples than ``batch_size`` shares a program per power of two.

Its batch was the example count itself, so a notebook predicting on 1, 4, 7, ...
examples compiled a program for each (0.2-0.3 s and ~2 MB each, never freed).
"""

import numpy as np
from flax import nnx

import nnjax.train as T
from nnjax.nn import MLP
from nnjax.train import compiled

X = np.random.default_rng(0).normal(size=(128, 6)).astype(np.float32)


def test_small_predicts_compile_once_per_power_of_two_and_match_the_model():
    model = MLP(6, (16,), 3, rngs=nnx.Rngs(0))
    model.eval()
    T.predict(model, X[:1])
    traces = compiled.TRACES.count
    for n in (1, 5, 6, 7, 8):  # batches of 1 and 8: both compiled at most once more
        np.testing.assert_allclose(T.predict(model, X[:n]), model(X[:n]), rtol=1e-6, atol=1e-6)
    assert compiled.TRACES.count - traces == 1  # batch 8 (batch 1 was compiled above)
    for n in (9, 12, 15, 16):
        out = T.predict(model, X[:n])
        assert out.shape == (n, 3)
        np.testing.assert_allclose(out, model(X[:n]), rtol=1e-6, atol=1e-6)
    assert compiled.TRACES.count - traces == 2  # and batch 16
