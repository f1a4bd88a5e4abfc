"""Models with several outputs: a named loss or metric is refused before anything runs;
a callable loss combining them trains, and ``evaluate`` reports it.

Before, a named loss failed in NumPy ("entry not a 2- or 3- tuple") and a named metric
inside the trace ("'dict' object has no attribute 'ndim'").
"""

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import losses, nn
from nnjax.train import compiled

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4)).astype(np.float32)
Y = {"cls": RNG.integers(0, 3, 30), "reg": X[:, :1]}
KW = dict(epochs=1, batch_size=8, verbose=0)


class TwoHeads(nnx.Module):
    """A classifier head ``(B, 3)`` and a regression head ``(B, 1)`` on one body."""

    def __init__(self, rngs):
        self.body = nn.Dense(4, 8, rngs=rngs)
        self.cls = nn.Dense(8, 3, rngs=rngs)
        self.reg = nn.Dense(8, 1, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.body(x))
        return {"cls": self.cls(h), "reg": self.reg(h)}


def combined(predictions, y):
    return losses.cross_entropy(predictions["cls"], y["cls"]) + losses.mse(
        predictions["reg"], y["reg"]
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(loss="mse"), r"`data`: the loss 'mse' compares one array of outputs"),
        (dict(loss=losses.cross_entropy), r"the loss 'cross_entropy' compares"),
        (dict(loss=combined, metrics=["accuracy"]), r"metrics \['accuracy'\] compare one array"),
    ],
)
def test_named_losses_and_metrics_are_refused_before_compiling(monkeypatch, kwargs, match):
    def refuse(*args):
        raise AssertionError("compiled before the input was checked")

    monkeypatch.setattr(compiled, "compiled_train", refuse)
    with pytest.raises(ValueError, match=match) as caught:
        T.fit(TwoHeads(nnx.Rngs(0)), (X, Y), **kwargs, **KW)
    assert "{'cls': (1, 3) float32, 'reg': (1, 1) float32}" in str(caught.value)
    with pytest.raises(ValueError, match="`data`: " + match.split(": ", 1)[-1]):
        T.evaluate(TwoHeads(nnx.Rngs(0)), (X, Y), **kwargs)


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
@pytest.mark.filterwarnings("ignore:.*copies of its rows:UserWarning")  # a batch-level loss
def test_a_combining_loss_trains_and_evaluates_to_its_value():
    model = TwoHeads(nnx.Rngs(0))
    history = T.fit(model, (X, Y), loss=combined, **KW)
    assert np.isfinite(history.history["loss"]).all()
    # batches that divide the data: a callable loss without `mask` would see the padded
    # copies in a partial last batch (documented in batch_loss)
    got = T.evaluate(model, (X, Y), loss=combined, batch_size=10)["loss"]
    np.testing.assert_allclose(got, float(combined(model(X), Y)), rtol=1e-5, atol=1e-7)
