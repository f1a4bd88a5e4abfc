"""``fit`` warns when a module or a loss of your own would count the padded rows of a last batch."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.nn import BatchNorm, Dense
from nnjax.train import evaluate, fit, masked_mean
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


X = np.random.default_rng(1).normal(size=(45, 4)).astype(np.float32)
Y = np.random.default_rng(2).normal(size=(45, 1)).astype(np.float32)


def quartic(predictions, y):  # one value for the batch: counts the padded copies
    return jnp.mean(jnp.abs(predictions - y) ** 4)


def quartic_fn(model, batch):
    return jnp.mean(jnp.abs(model(batch.x) - batch.y) ** 4)


def quartic_masked_fn(model, batch):
    return masked_mean(jnp.mean(jnp.abs(model(batch.x) - batch.y) ** 4, axis=1), batch.mask)


def quartic_weighted_fn(model, batch):
    rows = jnp.mean(jnp.abs(model(batch.x) - batch.y) ** 4, axis=1)
    return jnp.sum(rows * batch.weight) / jnp.sum(batch.mask)


def quartic_rows(predictions, y, reduction="mean"):  # per example: fit masks the copies
    rows = jnp.mean(jnp.abs(predictions - y) ** 4, axis=-1)
    return jnp.mean(rows) if reduction == "mean" else rows


def quartic_with_mask(predictions, y, mask=None):
    rows = jnp.mean(jnp.abs(predictions - y) ** 4, axis=-1)
    return rows.mean() if mask is None else jnp.sum(rows * mask) / jnp.sum(mask)


def _loss_warnings(batch_size=16, n=45, **objective):
    model = Dense(4, 1, rngs=nnx.Rngs(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, (X[:n], Y[:n]), batch_size=batch_size, epochs=1, verbose=0, **objective)
    return [str(w.message) for w in caught if "copies of its rows" in str(w.message)]


def test_a_batch_level_loss_over_a_padded_last_batch_is_named():
    (message,) = _loss_warnings(loss=quartic)
    assert message.startswith("`data`: the last batch of each epoch (45 examples, batch_size=16)")
    assert "the loss 'quartic' returns one value for the batch" in message
    assert "`reduction` keyword" in message


def test_a_loss_fn_that_reads_no_mask_is_named():
    (message,) = _loss_warnings(loss_fn=quartic_fn)
    assert "loss_fn reads neither batch.mask nor batch.weight" in message
    assert "nnjax.train.masked_mean" in message


def test_validation_data_are_judged_too():
    model = Dense(4, 1, rngs=nnx.Rngs(0))
    with pytest.warns(UserWarning, match=r"`validation`: the last batch .* \(13 examples"):
        fit(
            model, (X[:32], Y[:32]), loss=quartic, batch_size=8, epochs=1, verbose=0,
            validation_data=(X[32:], Y[32:]),
        )  # fmt: skip


def test_evaluate_warns_too():
    with pytest.warns(UserWarning, match=r"`data`: .* the loss 'quartic'"):
        evaluate(Dense(4, 1, rngs=nnx.Rngs(0)), (X, Y), loss=quartic, batch_size=16)


@pytest.mark.parametrize(
    "objective",
    [
        {"loss": "mse"},
        {"loss": quartic_rows},
        {"loss": quartic_with_mask},
        {"loss_fn": quartic_masked_fn},
        {"loss_fn": quartic_weighted_fn},
    ],
    ids=["named", "reduction", "mask", "masked-mean", "weights"],
)
def test_no_loss_warning_where_the_copies_are_left_out(objective):
    assert _loss_warnings(**objective) == []


@pytest.mark.parametrize("objective", [{"loss": quartic}, {"loss_fn": quartic_fn}])
def test_no_loss_warning_where_the_batches_divide_the_data(objective):
    assert _loss_warnings(batch_size=15, **objective) == []
