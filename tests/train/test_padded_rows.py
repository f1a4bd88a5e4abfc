"""``fit`` warns when a module of your own would count the padded rows of a last batch."""

import warnings

import numpy as np
import pytest
from flax import nnx

from nnjax.nn import BatchNorm, Dense
from nnjax.train import fit
from nnjax.train.padded_rows import unmasked_statistics


class Net(nnx.Module):
    def __init__(self, norm):
        self.dense = Dense(4, 8, rngs=nnx.Rngs(0))
        self.norm = norm
        self.out = Dense(8, 1, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return self.out(self.norm(self.dense(x)))


def _fit(norm, n):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(Net(norm), (x, y), loss="mse", batch_size=16, epochs=1, verbose=0)
    return [str(w.message) for w in caught if "is padded" in str(w.message)]


def test_flaxs_batch_norm_over_a_padded_last_batch_is_named():
    (message,) = _fit(nnx.BatchNorm(8, rngs=nnx.Rngs(0)), 20)
    assert message.startswith("the last batch of each epoch (20 examples, batch_size=16) is padded")
    assert "with 12 copies of its rows" in message and "norm (BatchNorm) counts them" in message


@pytest.mark.parametrize(
    ("make", "n"),
    [
        (lambda: nnx.BatchNorm(8, rngs=nnx.Rngs(0)), 32),
        (lambda: BatchNorm(8, rngs=nnx.Rngs(0)), 20),
    ],
    ids=["batches-divide-the-data", "nnjax-batch-norm-masks"],
)
def test_no_warning_where_nothing_is_counted(make, n):
    assert _fit(make(), n) == []


def test_the_modules_found():
    assert unmasked_statistics(Net(nnx.BatchNorm(8, rngs=nnx.Rngs(0)))) == ["norm (BatchNorm)"]
    assert unmasked_statistics(Net(BatchNorm(8, rngs=nnx.Rngs(0)))) == []
    assert unmasked_statistics(nnx.BatchNorm(8, rngs=nnx.Rngs(0))) == ["the model (BatchNorm)"]
