"""Keras data edge cases that ``fit`` and ``sweep`` train on, as Keras 3 does.

``class_weight`` with ``validation_split`` (a class that only the held-out part holds
was refused), iterables whose batches are int32 and int64 (refused, while float32 and
float64 were taken), ``sample_weight`` as a column ``(N, 1)`` (a ShapeError), and a
loss's error on the labels, which named one example's shapes, not the user's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import losses
from nnjax.errors import ShapeError
from nnjax.nn import MLP, Dense
from nnjax.train import validation
from nnjax.train.sweep import sweep
from tests.train._data import blobs, mlp, three_classes

ONE = jax.devices()[:1]
KW = dict(loss="cross_entropy", batch_size=8, epochs=2, verbose=0, devices=ONE, shuffle=False)


def _model(rngs=None, classes=4):
    return MLP(4, (8,), classes, rngs=rngs or nnx.Rngs(0))


def _history(data, model=None, **kw):
    return T.fit(model or _model(), data, **{**KW, **kw}).history


def _fit_mlp(data, **kw):  # stops before compiling when the checks fail
    T.fit(mlp(), data, loss="cross_entropy", epochs=1, verbose=0, devices=ONE, **kw)


@pytest.fixture(scope="module")
def data():
    x, y = three_classes(40)
    y[34:] = 3  # class 3: only in the part that validation_split=0.2 holds out (rows 32-39)
    return x, y


def test_class_weight_with_validation_split_trains_as_keras(data):
    x, y = data
    weights = {0: 1.0, 1: 2.0, 2: 0.5, 3: 4.0}
    split = _history((x, y), class_weight=weights, validation_split=0.2)
    w = np.array([weights[int(c)] for c in y[:32]], np.float32)
    by_hand = _history((x[:32], y[:32], w), validation_data=(x[32:], y[32:]))
    assert split.keys() == by_hand.keys() >= {"loss", "val_loss"}
    for name in split:
        np.testing.assert_allclose(split[name], by_hand[name], rtol=1e-6, atol=1e-7, err_msg=name)
    with pytest.raises(ValueError, match=r"class_weight names class \[5\] that the labels lack "
                       r"\(they hold \[0, 1, 2, 3\]\)"):  # fmt: skip
        _history((x, y), class_weight={**weights, 5: 1.0}, validation_split=0.2)


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_sweep_takes_class_weight_with_validation_split(data):
    weights = {0: 1.0, 1: 2.0, 2: 0.5, 3: 4.0}
    result = sweep(_model, data, loss="cross_entropy", class_weight=weights, batch_size=8,
                   validation_split=0.2, devices=ONE)  # fmt: skip
    assert np.isfinite(result.history["val_loss"]).all()


def test_an_iterable_of_int32_and_int64_labels_trains_as_one_of_int32(data):
    x, y = data
    mixed = [(x[:20], y[:20].astype(np.int32)), (x[20:], y[20:].astype(np.int64))]
    same = [(x[:20], y[:20].astype(np.int32)), (x[20:], y[20:].astype(np.int32))]
    np.testing.assert_array_equal(_history(mixed)["loss"], _history(same)["loss"])
    floats = [mixed[0], (x[20:], y[20:].astype(np.float32))]  # another kind: refused
    with pytest.raises(ValueError, match=r"batch 1: y has shape \(20,\) float32, but the first "
                       r"batch had \(20,\) int32"):  # fmt: skip
        _history(floats)


def test_sample_weight_may_be_a_column_as_in_keras(data):
    x, y = data
    w = np.linspace(0.5, 2.0, len(y)).astype(np.float32)
    flat = _history((x, y, w))
    np.testing.assert_array_equal(_history((x, y, w[:, None]))["loss"], flat["loss"])
    batches = [(x[:20], y[:20], w[:20, None]), (x[20:], y[20:], w[20:, None])]
    flat_batches = [(x[:20], y[:20], w[:20]), (x[20:], y[20:], w[20:])]
    np.testing.assert_array_equal(_history(batches)["loss"], _history(flat_batches)["loss"])


def test_sample_weights_takes_a_column():
    np.testing.assert_array_equal(validation.sample_weights("d", [[1.0], [2.0]], 2), [1.0, 2.0])
    with pytest.raises(ShapeError, match=r"`d`: sample_weight has shape \(2, 2\), expected "
                       r"\(2,\) \(or \(2, 1\)\)"):  # fmt: skip
        validation.sample_weights("`d`", np.ones((2, 2)), 2)
    with pytest.raises(ShapeError, match=r"shape \(1, 2\), expected \(2,\)"):
        validation.sample_weights("`d`", np.ones((1, 2)), 2)


def test_narrow_int64_is_the_dtype_jax_gives_checked():
    for dtype, want in [(np.int64, np.int32), (np.uint64, np.uint32), (np.int16, np.int16)]:
        assert validation.narrow_int64("y", np.arange(3, dtype=dtype)).dtype == want
    assert validation.narrow_int64("y", np.ones(2, bool)).dtype == bool
    big = np.array([0, -(2**31) - 1], np.int64)
    with pytest.raises(ValueError, match=r"^`batch 0 y` holds int64 values beyond int32's range "
                       r"\(y.flat\[1\] = -2147483649; JAX computes in int32"):  # fmt: skip
        validation.narrow_int64("batch 0 y", big)
    with pytest.raises(ValueError, match=r"uint64 values beyond uint32's range"):
        validation.narrow_int64("x", np.array([2**32], np.uint64))


def test_narrow_int64_keeps_64_bits_where_jax_computes_in_them(x64):
    big = np.array([2**40], np.int64)
    assert validation.narrow_int64("y", big) is big


def test_a_loss_error_names_the_users_shapes_not_one_examples():
    x, y = blobs()  # the loss is traced on one example: (1, 3) and (1,) were named
    words = (
        r"^`data`: the loss cannot compare model outputs of shape \(96, 3\) float32 with "
        r"labels \(96,\) float32: cross_entropy: `labels` of shape \(96,\) look like class ids"
    )
    with pytest.raises(ValueError, match=words):
        _fit_mlp((x, y.astype(np.float32)))
    with pytest.raises(ValueError, match=r"`validation`: .*shape \(10, 3\) float32 with labels "
                       r"\(10,\) float32"):  # fmt: skip
        _fit_mlp((x, y), validation_data=(x[:10], y[:10].astype(np.float32)))
    batches = [(x[:40], y[:40].astype(np.float32)), (x[40:], y[40:].astype(np.float32))]
    with pytest.raises(ValueError, match=r"shape \(40, 3\) float32 with labels \(40,\) float32"):
        _fit_mlp(batches)  # an iterable: its first batch's


class _TimeMajor(nnx.Module):
    """Outputs ``(T=5, B, C)``: its leading axis is not the batch's."""

    def __init__(self):
        self.dense = Dense(4, 3, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return jnp.stack([self.dense(x)] * 5)


class _WithLoad(nnx.Module):
    """Logits ``(B, 3)`` and a batch-level ``(4,)`` load, as a mixture of experts returns."""

    def __init__(self):
        self.dense, self.gate = Dense(4, 3, rngs=nnx.Rngs(0)), Dense(4, 4, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return {"logits": self.dense(x), "load": jax.nn.softmax(self.gate(x)).mean(0)}


def test_outputs_whose_leading_axis_is_not_the_batch_still_train():
    x, y = three_classes(n=32)
    time_major = lambda out, y: losses.cross_entropy(jnp.swapaxes(out, 0, 1), y)
    labels = np.tile(y[:, None], (1, 5))
    history = T.fit(_TimeMajor(), (x, labels), **{**KW, "loss": time_major})
    assert np.isfinite(history["loss"]).all()
    with_load = lambda out, y: losses.cross_entropy(out["logits"], y) + out["load"] @ jnp.ones(4)
    history = T.fit(_WithLoad(), (x, y), **{**KW, "loss": with_load})
    assert np.isfinite(history["loss"]).all()
    with pytest.raises(
        ShapeError, match=r"shape \(5, 1, 3\) float32 with labels \(1, 4\) int32 of one"
    ):
        T.fit(_TimeMajor(), (x, labels[:, :4]), **{**KW, "loss": time_major})
