"""Tests for nnjax.train.evaluate: evaluate and predict cover every example exactly once."""

import itertools

import jax
import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.errors import ShapeError
from nnjax.train import compiled
from tests.train._data import blobs, leaves, mlp


@pytest.mark.parametrize("devices", [jax.devices()[:1], jax.devices()])
def test_evaluate_matches_a_direct_computation(devices):
    x, y = blobs(n=22)  # 22 = 2 full batches of 8 and a padded one
    model = mlp()
    logs = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=8, devices=devices)
    logits = np.asarray(model(x))
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        logs["accuracy"], np.mean(logits.argmax(-1) == y), rtol=1e-6, atol=1e-6
    )


def test_predict_matches_model_and_does_not_retrace():
    x, _ = blobs(n=11)
    model = mlp(dropout=0.5)  # inference mode: dropout off
    model.eval()
    expected = np.asarray(model(x))
    np.testing.assert_allclose(T.predict(model, x, batch_size=4), expected, rtol=1e-6, atol=1e-6)
    traces = compiled.TRACES.count
    out = T.predict(model, x, batch_size=4)
    assert out.shape == (11, 3)
    assert compiled.TRACES.count == traces


def test_predict_takes_an_iterable_of_batches_like_fit():
    x, y = blobs(n=11)
    model = mlp()
    model.eval()
    expected = np.asarray(model(x))
    before = compiled.TRACES.count
    batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 11, 4)]  # 4, 4 and 3 (padded)
    np.testing.assert_allclose(T.predict(model, batches), expected, rtol=1e-6, atol=1e-6)
    bare = (x[i : i + 4] for i in range(0, 11, 4))  # a generator of inputs alone
    np.testing.assert_allclose(T.predict(model, bare), expected, rtol=1e-6, atol=1e-6)
    endless = itertools.cycle([x[:4]])
    twice = np.concatenate([expected[:4]] * 2)
    np.testing.assert_allclose(T.predict(model, endless, steps=2), twice, rtol=1e-6, atol=1e-6)
    assert compiled.TRACES.count - before <= 1  # every batch, padded or not, runs one program


def test_predict_names_bad_iterables():
    x, _ = blobs(n=8)
    model = mlp()
    with pytest.raises(TypeError, match="predict: `x` must be"):
        T.predict(model, 3.0)
    with pytest.raises(ValueError, match="batch 1"):
        T.predict(model, [x[:4], x[:4, :2]])


def test_evaluate_checks_the_labels_of_every_batch():
    x, y = blobs(n=16)
    model = mlp()
    before = leaves(model)

    def batches():
        yield x[:8], y[:8]
        yield x[8:], np.full(8, 5, np.int32)  # class 5 of a 3-class model

    words = r"`data batch 1` y\[0\] = 5 is out of range: the model has 3 outputs, so labels "
    with pytest.raises(ValueError, match=words + r"must lie in \[0, 2\] \(8 bad labels\)"):
        T.evaluate(model, batches(), loss="cross_entropy")
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)
    targets = [(x[:8], y[:8, None]), (x[8:], y[8:, None] * 7)]  # not class labels
    regression = T.evaluate(mlp(classes=1), targets, loss="mse")
    assert np.isfinite(regression["loss"])


def test_steps_is_for_iterables_not_arrays():
    x, y = blobs(n=32)
    with pytest.raises(ValueError, match=r"`steps`=1 limits the batches taken from an iterable, "
                       r"but `data` is arrays"):  # fmt: skip
        T.evaluate(mlp(), (x, y), loss="cross_entropy", batch_size=8, steps=1)
    with pytest.raises(ValueError, match=r"`steps`=1 .* but `x` is arrays"):
        T.predict(mlp(), x, batch_size=8, steps=1)
    with pytest.raises(TypeError, match=r"`steps` must be an integer, got '2'"):
        T.evaluate(mlp(), [(x, y)], loss="cross_entropy", steps="2")


def test_evaluate_names_its_data():
    x, y = blobs(n=8)
    with pytest.raises(ValueError, match=r"`data` is a list of 2 arrays.*tuple \(x, y\)"):
        T.evaluate(mlp(), [x, y], loss="cross_entropy")
    with pytest.raises(ShapeError, match=r"`data`: the model cannot take inputs of per-example "
                       r"shape \(5,\)"):  # fmt: skip
        T.evaluate(mlp(), (np.ones((8, 5), np.float32), y), loss="cross_entropy")


def test_predict_of_empty_or_nested_list_inputs():
    x, _ = blobs(n=8)
    with pytest.raises(ValueError, match=r"predict: `x` is empty: it has shape \(0, 4\) float32"):
        T.predict(mlp(), x[:0])
    with pytest.raises(ValueError, match=r"`x` holds Python numbers.*np\.asarray\(x\)"):
        T.predict(mlp(), x.tolist())
    with pytest.raises(ValueError, match=r"predict: batch 1 of `x` is float.*np\.asarray\(x\)"):
        T.predict(mlp(), iter([x[:4], 1.5]))


def test_predict_converts_array_likes_as_fit_does():
    pd = pytest.importorskip("pandas")
    x, _ = blobs(n=8)
    model = mlp()
    expected = T.predict(model, x)
    np.testing.assert_array_equal(T.predict(model, pd.DataFrame(x)), expected)


def test_predict_takes_x_only():
    x, y = blobs(n=8)
    with pytest.raises(TypeError, match=r"predict takes the inputs x only: got a tuple of 2 "
                       r"arrays \(\(8, 4\) float32, \(8,\) int32\) \(\(x, y\)\?\), but MLP takes 1 "
                       r"positional input; pass predict\(model, x\)"):  # fmt: skip
        T.predict(mlp(), (x, y))
    with pytest.raises(TypeError, match=r"^predict x\['y'\] has dtype int32"):  # not "x x[..]"
        T.predict(mlp(), {"x": x, "y": y})


def test_evaluate_names_a_custom_loss_that_is_not_scalar_or_uses_numpy():
    x, y = blobs(n=16)
    with pytest.raises(ValueError, match=r"`data`: the loss, loss\(predictions, y\), must return"):
        T.evaluate(mlp(), (x, y), loss=lambda p, t: p**2)
    with pytest.raises(TypeError, match=r"`data`: the loss .* reads the values of its inputs"):
        T.evaluate(mlp(), (x, y), loss=lambda p, t: np.mean(np.asarray(p)))
