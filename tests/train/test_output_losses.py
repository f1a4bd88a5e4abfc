"""A loss (and metrics) per model output: ``fit(loss={"cls": ..., "reg": ...})`` as Keras.

The per-output losses are summed per example, so masking, weights and padded batches
stay exact: ``evaluate`` must equal the mean over examples of each output's loss,
computed here with NumPy from the model's outputs. Metrics per output are logged as
``"<key>_<name>"`` and equal the metric of that output alone; each output's term of the
loss is logged as ``"<key>_loss"`` (weighted as the loss is) and the terms add up to it.
"""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import losses, nn
from nnjax.train import compiled
from tests.train._data import leaves

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4)).astype(np.float32)
Y = {"cls": RNG.integers(0, 3, 30).astype(np.int32), "reg": (X[:, 0] - X[:, 1]).astype(np.float32)}
LOSS = {"cls": "cross_entropy", "reg": "mse"}
ONE = jax.devices()[:1]


class TwoHeads(nnx.Module):
    """A classifier head ``(B, 3)`` and a regression head ``(B, 1)`` on one body."""

    def __init__(self, rngs, as_tuple=False):
        self.body = nn.Dense(4, 8, rngs=rngs)
        self.cls = nn.Dense(8, 3, rngs=rngs)
        self.reg = nn.Dense(8, 1, rngs=rngs)
        self.as_tuple = as_tuple

    def __call__(self, x):
        h = jax.nn.relu(self.body(x))
        out = {"cls": self.cls(h), "reg": self.reg(h)}
        return (out["cls"], out["reg"]) if self.as_tuple else out


def _terms(model, x, y):
    """Each example's cross-entropy and squared error ``(N,)``, in NumPy (float64)."""
    out = jax.tree.map(lambda a: np.asarray(a, np.float64), model(x))
    logits = out["cls"] - out["cls"].max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(x)), y["cls"]], (out["reg"][:, 0] - y["reg"]) ** 2


def _reference(model, x, y):
    """Mean over examples of cross-entropy + squared error, and the two metrics, in NumPy."""
    out = jax.tree.map(lambda a: np.asarray(a, np.float64), model(x))
    ce, se = _terms(model, x, y)
    accuracy = np.mean(out["cls"].argmax(axis=1) == y["cls"])
    return np.mean(ce + se), accuracy, np.mean(np.abs(out["reg"][:, 0] - y["reg"]))


def test_evaluate_is_exact_over_padded_batches():
    model = TwoHeads(nnx.Rngs(0))
    metrics = {"cls": ["accuracy"], "reg": "mae"}
    got = T.evaluate(model, (X, Y), loss=LOSS, metrics=metrics, batch_size=7, devices=ONE)
    loss, accuracy, mae = _reference(model, X, Y)
    assert sorted(got) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae"]
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["cls_accuracy"], accuracy)
    np.testing.assert_allclose(got["reg_mae"], mae, rtol=1e-5, atol=1e-7)


def test_fit_trains_as_the_combined_loss():
    def combined(predictions, y):  # batch-level: exact where batches divide the data
        return losses.cross_entropy(predictions["cls"], y["cls"]) + losses.mse(
            predictions["reg"][:, 0], y["reg"]
        )

    kw = dict(epochs=3, batch_size=10, verbose=0, devices=ONE, learning_rate=0.05)
    by_output, by_function = TwoHeads(nnx.Rngs(0)), TwoHeads(nnx.Rngs(0))
    history = T.fit(by_output, (X, Y), loss=LOSS, **kw).history
    reference = T.fit(by_function, (X, Y), loss=combined, **kw).history
    np.testing.assert_allclose(history["loss"], reference["loss"], rtol=1e-5, atol=1e-7)
    assert "cls_accuracy" in history  # the default metric of the classification output
    for a, b in zip(leaves(by_output), leaves(by_function), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_tuple_outputs_take_a_list_of_losses():
    model = TwoHeads(nnx.Rngs(0), as_tuple=True)
    y = (Y["cls"], Y["reg"])
    metrics = {0: "accuracy", 1: "mae"}
    got = T.evaluate(model, (X, y), loss=["cross_entropy", "mse"], metrics=metrics, devices=ONE)
    loss, accuracy, mae = _reference(TwoHeads(nnx.Rngs(0)), X, Y)
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5, atol=1e-7)
    assert got["output_0_accuracy"] == pytest.approx(accuracy)
    assert got["output_1_mae"] == pytest.approx(mae, rel=1e-5)


def test_equal_loss_dicts_compile_once():
    kw = dict(epochs=1, batch_size=10, verbose=0, devices=ONE)
    T.fit(TwoHeads(nnx.Rngs(0)), (X, Y), loss=dict(LOSS), **kw)
    traces = compiled.TRACES.count
    T.fit(TwoHeads(nnx.Rngs(1)), (X, Y), loss=dict(LOSS), **kw)
    assert compiled.TRACES.count == traces
    T.fit(TwoHeads(nnx.Rngs(0)), (X, Y), loss=losses.per_output(LOSS, {"reg": 0.5}), **kw)
    traces = compiled.TRACES.count
    T.fit(TwoHeads(nnx.Rngs(1)), (X, Y), loss=losses.per_output(LOSS, {"reg": 0.5}), **kw)
    assert compiled.TRACES.count == traces


@pytest.mark.slow
def test_a_sweep_takes_a_loss_per_output():
    result = T.sweep(
        lambda rngs: TwoHeads(rngs), (X, Y), loss=LOSS, members=T.grid(learning_rate=[0.01, 0.1]),
        epochs=2, batch_size=10, verbose=0,
    )  # fmt: skip
    assert result.history["cls_accuracy"].shape == (2, 2)
    assert np.isfinite(result.history["loss"]).all()
    total = result.history["cls_loss"] + result.history["reg_loss"]  # per member and epoch
    np.testing.assert_allclose(total, result.history["loss"], rtol=1e-6, atol=1e-7)


def test_each_term_is_logged_weighted_as_the_loss():
    model, weight = TwoHeads(nnx.Rngs(0)), RNG.uniform(0.5, 2.0, size=30).astype(np.float32)
    got = T.evaluate(model, (X, Y, weight), loss=LOSS, batch_size=7, devices=ONE)
    ce, se = _terms(model, X, Y)  # the loss: sum(weight * per-example) / examples
    np.testing.assert_allclose(got["cls_loss"], np.mean(weight * ce), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["reg_loss"], np.mean(weight * se), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["cls_loss"] + got["reg_loss"], got["loss"], rtol=1e-6, atol=1e-7)


def test_weighted_outputs_as_keras_loss_weights():
    model, loss = TwoHeads(nnx.Rngs(0)), losses.per_output(LOSS, weights={"reg": 0.25})
    got = T.evaluate(model, (X, Y), loss=loss, batch_size=7, devices=ONE)
    ce, se = _terms(model, X, Y)
    np.testing.assert_allclose(got["loss"], np.mean(ce + 0.25 * se), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["reg_loss"], np.mean(se), rtol=1e-5, atol=1e-7)  # unweighted
    in_order = losses.per_output(LOSS, weights=[1, 0.25])  # a dict's outputs in order
    assert in_order == loss and hash(in_order) == hash(loss)
    pair = losses.per_output(["cross_entropy", "mse"], weights=[1.0, 0.25])
    tuple_model = TwoHeads(nnx.Rngs(0), as_tuple=True)
    got = T.evaluate(tuple_model, (X, (Y["cls"], Y["reg"])), loss=pair, devices=ONE)
    np.testing.assert_allclose(got["loss"], np.mean(ce + 0.25 * se), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("loss", "weights", "error", "match"),
    [
        (LOSS, {"rg": 0.5}, ValueError, r"'rg' is not an output the losses name \['cls', 'reg'\]"),
        (LOSS, 0.5, TypeError, r"expected one number per loss, or a dict by output key"),
        (["mse", "mae"], {0: 1.0}, TypeError, r"expected one number per loss, got \{0: 1.0\}"),
        (["mse", "mae"], [1.0], ValueError, r"1 weights for 2 losses"),
        (LOSS, {"reg": -1.0}, ValueError, r"weights\['reg'\] must be finite and >= 0"),
        (LOSS, {"reg": float("nan")}, ValueError, r"must be finite"),
        (LOSS, {"reg": True}, TypeError, r"weights\['reg'\] must be a number, got True"),
        (LOSS, {"reg": "0.5"}, TypeError, r"must be a number, got '0.5'"),
        ("mse", None, TypeError, r"per_output: expected a dict or a tuple \(list\) of losses"),
    ],
)  # fmt: skip
def test_bad_loss_weights_are_named(loss, weights, error, match):
    with pytest.raises(error, match=match):
        losses.per_output(loss, weights)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_fit_logs_the_terms_and_they_add_up_to_the_loss():
    kw = dict(epochs=2, batch_size=8, verbose=0, devices=ONE, validation_data=(X, Y))
    history = T.fit(TwoHeads(nnx.Rngs(0)), (X, Y), loss=LOSS, **kw).history  # 30 = 3 * 8 + 6
    for prefix in ("", "val_"):
        total = np.add(history[f"{prefix}cls_loss"], history[f"{prefix}reg_loss"])
        np.testing.assert_allclose(total, history[f"{prefix}loss"], rtol=1e-6, atol=1e-7)
    tuple_history = T.fit(
        TwoHeads(nnx.Rngs(0), as_tuple=True), (X, (Y["cls"], Y["reg"])),
        loss=["cross_entropy", "mse"], epochs=1, batch_size=8, verbose=0, devices=ONE,
    ).history  # fmt: skip
    assert {"output_0_loss", "output_1_loss"} <= set(tuple_history)


@pytest.mark.slow  # four epochs with validation: CI's slow step runs it
def test_a_term_can_be_monitored():
    kw = dict(epochs=4, batch_size=10, verbose=0, devices=ONE, validation_data=(X, Y))
    stop = T.EarlyStopping("val_reg_loss", patience=0, min_delta=1e9)  # stops after epoch 2
    history = T.fit(TwoHeads(nnx.Rngs(0)), (X, Y), loss=LOSS, callbacks=[stop], **kw).history
    assert len(history["val_reg_loss"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "data", "error", "match"),
    [
        (dict(loss={"cls": "cross_entropy", "other": "mse"}), (X, Y), ValueError,
         r"`data`: loss: the model outputs have no 'other'"),
        (dict(loss=LOSS), (X, {"cls": Y["cls"]}), ValueError, r"the labels y have no 'reg'"),
        (dict(loss={"cls": "crossentropy"}), (X, Y), ValueError, r"loss\['cls'\]: unknown loss"),
        (dict(loss={"cls": optax.softmax_cross_entropy_with_integer_labels}), (X, Y), TypeError,
         r"takes no `reduction` keyword"),
        (dict(loss=LOSS, metrics={"clss": "accuracy"}), (X, Y), ValueError,
         r"metrics\['clss'\]: the model outputs have no output 'clss'"),
        (dict(loss=LOSS, class_weight={0: 2.0}), (X, Y), ValueError,
         r"class_weight needs one array of class labels"),
        (dict(loss=LOSS), (X, {"cls": Y["cls"] + 3, "reg": Y["reg"]}), ValueError,
         r"`data, output 'cls'` y\[0\] = \d is out of range"),
        (dict(loss={"cls": "cross_entropy"}), (X, Y["cls"]), ValueError,
         r"a dict of losses needs a model returning a dict"),
    ],
)  # fmt: skip
def test_mistakes_are_named_before_compiling(monkeypatch, kwargs, data, error, match):
    def refuse(*args):
        raise AssertionError("compiled before the input was checked")

    monkeypatch.setattr(compiled, "compiled_train", refuse)
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)) if data[1] is Y["cls"] else TwoHeads(nnx.Rngs(0))
    with pytest.raises(error, match=match):
        T.fit(model, data, epochs=1, verbose=0, **kwargs)
