"""``sample_weight`` per position ``(N, T)`` (:mod:`nnjax.train.loss_weights`).

A token model (``Dense`` over the last axis: logits ``(B, T, C)`` for labels
``(B, T)``), weights 0 on the positions padding filled. References: the loss computed
from the model's outputs with Optax, invariance of training to the labels of zero-weight
positions, and the per-example weights that constant per-position weights equal.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.errors import ShapeError
from nnjax.metrics import weighted
from nnjax.nn import Dense
from nnjax.train import data as data_lib
from nnjax.train import loss_weights
from nnjax.train.iterable_source import IterableSource
from nnjax.train.sweep import grid, sweep
from tests.train._data import leaves

N, L, F, C, B = 20, 5, 3, 4, 8  # 20 examples in batches of 8: a padded last batch


@pytest.fixture(scope="module")
def tokens():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, L, F)).astype(np.float32)
    y = rng.integers(0, C, (N, L)).astype(np.int32)
    lengths = rng.integers(1, L + 1, N)
    w = (np.arange(L) < lengths[:, None]).astype(np.float32)  # padded sequences
    return x, y, w


def _model(seed=0):
    return Dense(F, C, rngs=nnx.Rngs(seed))


def _fit(data, model=None, **kw):
    model = _model() if model is None else model
    kw = dict(loss="cross_entropy", optimizer=optax.sgd(0.1), batch_size=B, epochs=2) | kw
    history = T.fit(model, data, shuffle=False, verbose=0, **kw)
    return history.history, model


def _reference_loss(model, x, y, w):
    per = optax.softmax_cross_entropy_with_integer_labels(np.asarray(model(x)), y)
    return float(np.sum(np.asarray(per) * w) / L / len(x))  # Keras' sum_over_batch_size


def test_zero_weight_positions_do_not_count(tokens):
    x, y, w = tokens
    history, model = _fit((x, y, w))
    other = np.where(w == 0, (y + 1) % C, y)  # other labels where the weight is 0
    history2, model2 = _fit((x, other, w))
    assert history2 == history
    for a, b in zip(leaves(model), leaves(model2), strict=True):
        np.testing.assert_array_equal(a, b)
    unweighted, _ = _fit((x, other))
    assert unweighted["loss"] != history["loss"]  # the labels there count without weights


def test_weights_constant_along_positions_equal_example_weights(tokens):
    x, y, _ = tokens
    per_example = np.random.default_rng(1).uniform(0.0, 2.0, N).astype(np.float32)
    history, model = _fit((x, y, per_example))
    history2, model2 = _fit((x, y, np.repeat(per_example[:, None], L, axis=1)))
    np.testing.assert_allclose(history2["loss"], history["loss"], rtol=1e-6, atol=1e-7)
    for a, b in zip(leaves(model), leaves(model2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_evaluate_and_validation_loss_match_the_reference(tokens):
    x, y, w = tokens
    model = _model()
    got = T.evaluate(model, (x, y, w), loss="cross_entropy", batch_size=B)["loss"]
    np.testing.assert_allclose(got, _reference_loss(model, x, y, w), rtol=1e-6, atol=1e-7)
    history, trained = _fit((x, y, w), validation_data=(x[:7], y[:7], w[:7]), epochs=1)
    want = _reference_loss(trained, x[:7], y[:7], w[:7])
    np.testing.assert_allclose(history["val_loss"][-1], want, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_first_epoch_loss_is_the_weighted_mean_of_each_batch(tokens):
    """One step per batch at learning rate 0: each batch's loss is the reference's."""
    x, y, w = tokens
    model = _model()
    history, _ = _fit((x, y, w), model=model, optimizer=optax.sgd(0.0), epochs=1)
    batches = [slice(i, i + B) for i in range(0, N, B)]
    per_batch = [_reference_loss(model, x[s], y[s], w[s]) for s in batches]
    want = np.average(per_batch, weights=[len(x[s]) for s in batches])  # real rows
    np.testing.assert_allclose(history["loss"][0], want, rtol=1e-6, atol=1e-7)


def test_iterables_and_several_devices_train_as_arrays(tokens):
    x, y, w = tokens
    history, model = _fit((x, y, w))
    batches = [(x[i : i + B], y[i : i + B], w[i : i + B]) for i in range(0, N, B)]
    history2, model2 = _fit(batches)
    history4, model4 = _fit((x, y, w), devices=jax.devices()[:4])
    for got, other in ((history2, model2), (history4, model4)):
        np.testing.assert_allclose(got["loss"], history["loss"], rtol=1e-5, atol=1e-6)
        for a, b in zip(leaves(model), leaves(other), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_a_sweep_member_trains_as_fit(tokens):
    x, y, w = tokens
    specs = ["accuracy", weighted("accuracy")]  # over every token, over the real ones
    kw = dict(optimizer=optax.sgd, learning_rate=0.1, metrics=specs, validation_data=(x, y, w))
    history, model = _fit((x, y, w), **kw)
    result = sweep(
        lambda rngs: Dense(F, C, rngs=rngs), (x, y, w), members=grid(seeds=[0]),
        loss="cross_entropy", batch_size=B, epochs=2, shuffle=False, verbose=0, **kw,
    )  # fmt: skip
    for name in ("loss", "val_loss", "weighted_accuracy", "val_weighted_accuracy", "accuracy"):
        got = result.history[name][0]
        np.testing.assert_allclose(got, history[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert history["val_weighted_accuracy"] != history["val_accuracy"]
    for a, b in zip(leaves(model), leaves(result.best()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mse_weights_spread_over_the_features():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, L, F)).astype(np.float32)
    y = rng.normal(size=(6, L, C)).astype(np.float32)
    w = rng.uniform(0.0, 2.0, (6, L)).astype(np.float32)
    model = _model()
    got = T.evaluate(model, (x, y, w), loss="mse", batch_size=4)["loss"]
    per = ((np.asarray(model(x)) - y) ** 2).mean(axis=-1)  # Keras' mse: over the last axis
    np.testing.assert_allclose(got, np.sum(per * w) / (6 * L), rtol=1e-6, atol=1e-7)


def test_loss_fn_gets_the_weights_per_position_zero_on_padding(tokens):
    x, y, w = tokens
    seen = []

    def loss_fn(model, batch):
        seen.append(batch.weight.shape)
        per = optax.softmax_cross_entropy_with_integer_labels(model(batch.x), batch.y)
        return jnp.sum(per * batch.weight) / jnp.maximum(jnp.sum(batch.weight), 1.0)

    _fit((x, y, w), loss=None, loss_fn=loss_fn, epochs=1)
    assert seen and all(shape == (B, L) for shape in seen)
    source = data_lib.array_source("d", (x, y, w), batch_size=B)
    last = source.batch(np.array([16, 17, 18, 19, 0, 1, 2, 3]), np.repeat([1.0, 0.0], 4))
    np.testing.assert_array_equal(last.weight[4:], 0.0)
    np.testing.assert_array_equal(last.weight[:4], w[16:])


def test_sample_weights_checks_per_position_shapes():
    y = np.zeros((3, L), np.int32)
    assert loss_weights.sample_weights("d", np.ones((3, L)), 3, y).shape == (3, L)
    assert loss_weights.sample_weights("d", np.ones((3, L)), 3, np.zeros((3, L, 2))).shape == (
        3,
        L,
    )
    with pytest.raises(ShapeError, match=r"`d`: sample_weight has shape \(3, 4\), expected "
                       r"\(3,\) \(or \(3, 1\)\), or one per position: leading axes of y's "
                       r"shape \(3, 5\)"):  # fmt: skip
        loss_weights.sample_weights("`d`", np.ones((3, 4)), 3, y)
    with pytest.raises(ShapeError, match=r"needs y one array, not a pytree"):
        loss_weights.sample_weights("`d`", np.ones((3, L)), 3, {"a": y})
    w = np.ones((3, L))
    w[1, 2] = -1.0
    with pytest.raises(ValueError, match=r"`d`: sample_weight\[1, 2\] = -1.0; weights must"):
        loss_weights.sample_weights("`d`", w, 3, y)


def test_loss_values_must_start_with_the_weights_shape(tokens):
    x, y, w = tokens

    def per_example_only(logits, labels, *, reduction="mean"):  # (B,) even unreduced
        per = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(axis=1)
        return per if reduction == "none" else per.mean()

    match = r"per position has shape \(8, 5\) per batch, but the loss's values \(reduction="
    with pytest.raises(ShapeError, match=match + r"'none'\) have shape \(8,\)"):
        _fit((x, y, w), loss=per_example_only, metrics=[])


def test_a_batch_level_loss_refuses_weights_per_position(tokens):
    x, y, w = tokens
    batch_loss = lambda logits, labels: optax.softmax_cross_entropy_with_integer_labels(
        logits, labels
    ).mean()
    with pytest.raises(ValueError, match=r"`data` weighs its examples"):
        _fit([(x[:B], y[:B], w[:B])], loss=batch_loss, metrics=[])
    _fit([(x[:B], y[:B], np.ones((B, L)))], loss=batch_loss, metrics=[])  # all ones: fine


def test_iterable_batches_keep_the_first_batchs_kind_of_weights(tokens):
    x, y, w = tokens
    with pytest.raises(ShapeError, match=r"batch 1: sample_weight has shape \(8, 5\), but the "
                       r"first batch had \(8,\)"):  # fmt: skip
        list(IterableSource([(x[:B], y[:B], w[:B, 0]), (x[B:16], y[B:16], w[B:16])]).batches(0, 0))
    src = IterableSource([(x[:B], y[:B], w[:B]), (x[B:12], y[B:12]), (x[:B], y[:B], w[:B, 1])])
    _, second, third = src.batches(0, 0)  # none, and one per example: spread over the tokens
    np.testing.assert_array_equal(second.weight, np.repeat([[1.0], [0.0]], 4, axis=0) * np.ones(L))
    np.testing.assert_array_equal(third.weight, np.repeat(w[:B, 1:2], L, axis=1))


def test_class_weight_per_token_labels_weighs_each_token(tokens):
    x, y, w = tokens
    table = np.array([1.0, 4.0, 0.5, 2.0], np.float32)
    history, model = _fit((x, y, w), class_weight=dict(enumerate(table)))
    history2, model2 = _fit((x, y, w * table[y]))
    np.testing.assert_allclose(history["loss"], history2["loss"], rtol=1e-6, atol=1e-7)
    for a, b in zip(leaves(model), leaves(model2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    per_example = np.random.default_rng(4).uniform(0.5, 2.0, N).astype(np.float32)
    batches = [(x[i : i + B], y[i : i + B], per_example[i : i + B]) for i in range(0, N, B)]
    history3, _ = _fit(batches, class_weight=dict(enumerate(table)))
    history4, _ = _fit((x, y, per_example[:, None] * table[y]))
    np.testing.assert_allclose(history3["loss"], history4["loss"], rtol=1e-6, atol=1e-7)


def test_class_weight_scales_every_position_of_a_row():
    y = np.array([[1, 0], [0, 1], [0, 1]], np.float32)  # one-hot rows
    w = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    source = data_lib.array_source(
        "d", (np.ones((3, 2)), y, w), batch_size=3, class_weight={1: 10.0}
    )
    np.testing.assert_array_equal(source.weight, w * np.array([[1.0], [10.0], [10.0]]))


def test_along_rows_and_masked():
    assert loss_weights.along_rows(jnp.ones(2), jnp.ones((2, 3, 4))).shape == (2, 1, 1)
    got = loss_weights.masked(np.ones((2, 3), np.float32), np.array([0.0, 1.0], np.float32))
    np.testing.assert_array_equal(got, [[0, 0, 0], [1, 1, 1]])
    assert loss_weights.masked(jnp.ones(2), jnp.array([1.0, 0.0])).tolist() == [1.0, 0.0]
