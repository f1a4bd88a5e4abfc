"""Metrics and losses as a Keras user writes them: thresholds, argument order, names.

The references are Keras's definitions, computed with NumPy: ``BinaryAccuracy``
counts class 1 where the output is ``> 0.5``, a custom metric returning one value per
example is averaged over the examples, the metric ``cosine_similarity`` is the mean
similarity (the loss its negation).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import _checks, losses, metrics, nn, train
from nnjax.errors import ShapeError
from nnjax.train import compiled

# Edge grids against Keras: the slow group (``pytest -m slow``, which CI
# runs). The default run keeps these functions' own tests (test_losses.py,
# test_metrics.py, test_activations.py) and stays under 10 minutes.
pytestmark = pytest.mark.slow

RTOL = ATOL = 1e-6


def _binary_data(n=45):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0.8).astype(np.float32)
    return x, y


def _dense(outputs=1, bias=0.3):
    """A linear model whose outputs sit around ``bias``: > 0 but mostly < 0.5."""
    model = nn.Dense(4, outputs, rngs=nnx.Rngs(0))
    model.kernel[...] = jnp.full((4, outputs), 0.1, jnp.float32)
    model.bias[...] = jnp.full((outputs,), bias, jnp.float32)
    return model


def _scores(pred, y, threshold):
    hit = (pred > threshold).astype(np.float32)
    tp, fp, fn = (np.sum(a * b) for a, b in ((hit, y), (hit, 1 - y), (1 - hit, y)))
    return {
        "accuracy": np.mean(hit == y),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }


@pytest.mark.parametrize(
    ("loss", "threshold"),
    [("mse", 0.5), ("mean_absolute_error", 0.5), (losses.huber, 0.5), ("log_cosh", 0.5),
     ("binary_cross_entropy", 0.0), ("hinge", 0.0), ("squared_hinge", 0.0),
     (lambda p, y, reduction="mean": losses.mse(p, y.reshape(p.shape), reduction=reduction), 0.0)],
)  # fmt: skip
def test_binary_threshold_follows_the_loss_in_fit_and_evaluate(loss, threshold):
    """Keras's BinaryAccuracy (> 0.5) for the losses of values, > 0 for the losses of
    logits or margins and for losses of one's own; fit's logs agree with evaluate's."""
    x, y = _binary_data()
    model = _dense()
    pred = np.asarray(model(jnp.asarray(x)))[:, 0]
    expected = _scores(pred, y, threshold)
    assert expected["accuracy"] != _scores(pred, y, 0.5 - threshold)["accuracy"]  # it matters
    names = ["accuracy", "binary_accuracy", "precision", "recall", "f1"]
    history = train.fit(
        model, (x, y), loss=loss, metrics=names, optimizer=optax.set_to_zero(),
        batch_size=16, epochs=1, verbose=0,
    )  # fmt: skip
    logs = train.evaluate(model, (x, y), loss=loss, metrics=names, batch_size=16)
    for name in names:
        want = expected["accuracy" if name.endswith("accuracy") else name]
        np.testing.assert_allclose(history.history[name][0], want, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(logs[name], want, rtol=RTOL, atol=ATOL)


class TwoHeads(nnx.Module):
    def __init__(self):
        self.dense = _dense(2)

    def __call__(self, x):
        h = self.dense(x)
        return {"reg": h[:, :1], "cls": h[:, 1:]}


def test_threshold_of_each_output_follows_its_loss():
    x, y = _binary_data()
    model = TwoHeads()
    pred = np.asarray(_dense()(jnp.asarray(x)))[:, 0]
    logs = train.evaluate(
        model, (x, {"reg": y, "cls": y}), loss={"reg": "mse", "cls": "binary_cross_entropy"},
        metrics={"reg": "accuracy", "cls": "accuracy"}, batch_size=16,
    )  # fmt: skip
    np.testing.assert_allclose(
        logs["reg_accuracy"], np.mean((pred > 0.5) == y), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(logs["cls_accuracy"], np.mean((pred > 0) == y), rtol=RTOL, atol=ATOL)


def test_specs_for_marks_thresholds_and_keeps_one_step_per_threshold():
    a, b = metrics.specs_for("mse", ["accuracy"]), metrics.specs_for("mse", "accuracy")
    assert a == b and hash(a) == hash(b)  # one compiled step
    assert a == (metrics.Thresholded("accuracy", 0.5),)  # the name given and its threshold
    assert (a[0].spec, a[0].threshold) == ("accuracy", 0.5)
    assert metrics.specs_for("binary_cross_entropy", ["accuracy"]) == ("accuracy",)
    assert a != ("accuracy",)  # the step of another threshold is another step
    assert metrics.resolve(a[0]).name == "accuracy"


def test_a_loss_of_values_logs_its_thresholded_metrics_under_the_names_given(tmp_path):
    """History keys, a val_ monitor with mode='auto' and CSV columns are the names given."""
    x, y = _binary_data()
    model = _dense()
    want = _scores(np.asarray(model(jnp.asarray(x)))[:, 0], y, 0.5)["accuracy"]
    stop = train.EarlyStopping("val_accuracy", patience=1, min_delta=0.5)  # mode="auto"
    history = train.fit(
        model, (x, y), loss="mse", metrics=["accuracy"], optimizer=optax.set_to_zero(),
        validation_data=(x, y), batch_size=16, epochs=5, verbose=0,
        callbacks=[stop, train.CSVLogger(tmp_path / "log.csv")],
    )  # fmt: skip
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    np.testing.assert_allclose(history.history["accuracy"], [want] * 2, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(history.history["val_accuracy"], [want] * 2, rtol=RTOL, atol=ATOL)
    assert (stop.monitor.mode, stop.stopped_epoch) == ("max", 1)  # watched val_accuracy
    assert stop.monitor.best == pytest.approx(want)
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,accuracy,val_loss,val_accuracy"


def test_fit_compiles_one_step_per_threshold():
    x, y = _binary_data()
    kw = dict(loss="mse", optimizer="sgd", batch_size=16, epochs=1, verbose=0)
    train.fit(_dense(), (x, y), metrics=["accuracy"], **kw)
    traces = compiled.TRACES.count
    train.fit(_dense(), (x, y), metrics="accuracy", **kw)  # the same spec: the same step
    assert compiled.TRACES.count == traces
    mine = metrics.Thresholded("accuracy", 0.25)  # a threshold of one's own: another step
    history = train.fit(_dense(), (x, y), metrics=[mine], **kw)
    assert compiled.TRACES.count > traces and "accuracy" in history.history
    model = _dense()
    logs = train.evaluate(model, (x, y), loss="mse", metrics=[mine], batch_size=16)
    pred = np.asarray(model(jnp.asarray(x)))[:, 0]
    assert _scores(pred, y, 0.25)["accuracy"] != _scores(pred, y, 0.5)["accuracy"]
    np.testing.assert_allclose(
        logs["accuracy"], _scores(pred, y, 0.25)["accuracy"], rtol=RTOL, atol=ATOL
    )


# 2. losses and metrics written in Keras's order (y_true, y_pred)


def pinball_keras(y_true, y_pred, q=0.9):
    e = y_true - y_pred
    return jnp.mean(jnp.maximum(q * e, (q - 1) * e))


def pinball(pred, y, q=0.9):
    e = y - pred
    return jnp.mean(jnp.maximum(q * e, (q - 1) * e))


def pinball_rows_keras(y_true, y_pred, *, reduction="mean"):
    e = y_true - y_pred
    values = jnp.maximum(0.9 * e, -0.1 * e)
    return jnp.mean(values) if reduction == "mean" else values


def _regression(n=45):
    x = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, :1] * 2.0 + 1.0).astype(np.float32)


def _fit(loss, metric, batch_size=15):
    model = _dense(bias=0.0)
    x, y = _regression()
    history = train.fit(
        model, (x, y), loss=loss, metrics=[metric], optimizer="sgd", learning_rate=0.05,
        batch_size=batch_size, epochs=3, shuffle=False, verbose=0,
    )  # fmt: skip
    return history.history, np.asarray(model.kernel[...])


def test_a_loss_and_metric_in_keras_order_train_as_in_nnjax_order():
    """The pinball loss at q=0.9 is asymmetric: swapped arguments train another model."""
    theirs, kernel = _fit(pinball_keras, pinball_keras)
    ours, expected = _fit(pinball, pinball)
    np.testing.assert_allclose(theirs["loss"], ours["loss"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(theirs["pinball_keras"], ours["pinball"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(kernel, expected, rtol=RTOL, atol=ATOL)
    _, y = _regression()
    value = float(losses.get(pinball_keras)(jnp.zeros_like(y), jnp.asarray(y)))
    np.testing.assert_allclose(
        value, float(pinball(jnp.zeros_like(y), jnp.asarray(y))), rtol=RTOL, atol=ATOL
    )


def test_keras_order_keeps_reduction_per_output_losses_and_names():
    fn = losses.get(pinball_rows_keras)
    assert fn is losses.get(pinball_rows_keras)  # one wrapper: no recompiles
    assert fn.__name__ == "pinball_rows_keras" and _checks.takes_keyword(fn, "reduction")
    p, t = jnp.zeros((3, 1)), jnp.ones((3, 1))
    np.testing.assert_allclose(
        fn(p, t, reduction="none"), np.full((3, 1), 0.9), rtol=RTOL, atol=ATOL
    )
    both = losses.get({"a": pinball_rows_keras})
    assert both == losses.get({"a": pinball_rows_keras})  # equal: one compiled step
    np.testing.assert_allclose(float(both({"a": p}, {"a": t})), 0.9, rtol=RTOL, atol=ATOL)
    assert metrics.per_example(pinball_rows_keras)(p, t).tolist() == pytest.approx([0.9] * 3)
    m = metrics.resolve(pinball_rows_keras)
    assert m.name == "pinball_rows_keras"
    np.testing.assert_allclose(m.result(m.stats(p, t, jnp.ones(3))), 0.9, rtol=RTOL, atol=ATOL)
    assert metrics.get(pinball_keras)(p, t) == pytest.approx(0.9)
    order = lambda y_pred, y_true: y_pred  # other names: nnjax's order, as given
    assert losses.get(order) is order


# 4. a custom metric with one value per example


def abs_err(pred, y):
    return jnp.mean(jnp.abs(pred - y), axis=-1)


def test_a_per_example_metric_is_averaged_over_the_real_examples():
    x, y = _regression()
    model = _dense(bias=0.0)
    pred = np.asarray(model(jnp.asarray(x)))
    expected = np.mean(np.abs(pred - y))  # Keras: the mean of the per-sample values
    logs = train.evaluate(model, (x, y), loss="mse", metrics=[abs_err], batch_size=16)
    np.testing.assert_allclose(logs["abs_err"], expected, rtol=RTOL, atol=ATOL)
    history = train.fit(
        model, (x, y), loss="mse", metrics=[abs_err], optimizer=optax.set_to_zero(),
        batch_size=16, verbose=0,
    )  # fmt: skip
    np.testing.assert_allclose(history.history["abs_err"][0], expected, rtol=RTOL, atol=ATOL)


def test_a_metric_of_another_shape_fails_before_training_naming_it():
    def pairwise(pred, y):
        return jnp.abs(pred - y.T)  # (B, B)

    x, y = _regression()
    model = _dense(bias=0.0)
    before = np.asarray(model.kernel[...])
    with pytest.raises(ShapeError, match=r"metric 'pairwise' returned shape \(16, 16\)"):
        train.fit(model, (x, y), loss="mse", metrics=[pairwise], batch_size=16, verbose=0)
    np.testing.assert_array_equal(np.asarray(model.kernel[...]), before)


# 5. the metric cosine_similarity is the similarity


def test_cosine_similarity_metric_logs_the_similarity_and_the_loss_its_negation():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), rng.normal(size=(40, 3))
    model = _dense(3, bias=0.0)
    p = np.asarray(model(jnp.asarray(x)), np.float64)
    cos = np.sum(p * y, -1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(y, axis=-1))
    logs = train.evaluate(
        model, (x, y.astype(np.float32)), loss="cosine_similarity",
        metrics=["cosine_similarity"], batch_size=16,
    )  # fmt: skip
    np.testing.assert_allclose(logs["cosine_similarity"], np.mean(cos), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["loss"], -np.mean(cos), rtol=1e-5, atol=1e-6)
    m = metrics.resolve(losses.cosine_similarity)
    value = m.result(m.stats(jnp.asarray(p), jnp.asarray(y), jnp.ones(40)))
    np.testing.assert_allclose(value, np.mean(cos), rtol=1e-5, atol=1e-6)


# 6. Keras's metric names


@pytest.mark.parametrize(
    ("name", "same_as"),
    [("sparse_categorical_accuracy", "accuracy"), ("categorical_accuracy", "accuracy"),
     ("top_k_categorical_accuracy", "top_k_accuracy"),
     ("sparse_top_k_categorical_accuracy", "top_k_accuracy")],
)  # fmt: skip
def test_keras_metric_names_are_aliases_logged_as_given(name, same_as):
    rng = np.random.default_rng(3)
    logits = jnp.asarray(rng.normal(size=(30, 7)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 7, 30))
    y = jax.nn.one_hot(labels, 7) if name.startswith(("categorical", "top_k")) else labels
    m, ref = metrics.resolve(name), metrics.resolve(same_as)
    assert m.name == name
    value = m.result(m.stats(logits, y, jnp.ones(30)))
    assert value == ref.result(ref.stats(logits, labels, jnp.ones(30)))


def test_names_nnjax_lacks_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown metric 'msle'; known: .*binary_accuracy"):
        metrics.resolve("msle")
