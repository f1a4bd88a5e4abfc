"""``predict`` on fewer examples than ``batch_size`` shares programs across sizes.

Its batch was the example count itself, so a notebook predicting on 1, 4, 7, ...
examples compiled a program for each (0.2-0.3 s and ~2 MB each, never freed). The
count is now rounded up to three significant bits (``size_buckets.bucket``: under a
quarter of padding, so a large call computes at most 1.25x its rows).
"""

import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.nn import MLP
from nnjax.train import compiled

X = np.random.default_rng(0).normal(size=(128, 6)).astype(np.float32)


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_small_predicts_share_a_program_per_bucket_and_match_the_model():
    model = MLP(6, (16,), 3, rngs=nnx.Rngs(0))
    model.eval()
    T.predict(model, X[:20])
    traces = compiled.TRACES.count
    for n in (17, 18, 19, 20):  # one bucket (20): no new program
        out = T.predict(model, X[:n])
        assert out.shape == (n, 3)
        np.testing.assert_allclose(out, model(X[:n]), rtol=1e-6, atol=1e-6)
    assert compiled.TRACES.count == traces
    for n in (21, 22, 23, 24):  # the next bucket (24): one program
        np.testing.assert_allclose(T.predict(model, X[:n]), model(X[:n]), rtol=1e-6, atol=1e-6)
    assert compiled.TRACES.count - traces == 1
