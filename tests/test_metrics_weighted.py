"""``nnjax.metrics.weighted``: Keras' ``weighted_metrics``, against scikit-learn's
``sample_weight``.

A weight of 0 leaves an example out entirely, so the reference drops those rows
(scikit-learn would still count their classes as present in a macro average).
Weights per position ``(B, T)`` are checked against the flattened positions.
"""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sklearn.metrics as skm
from flax import nnx

import nnjax.train as T
from nnjax import metrics
from nnjax.metrics import OutputMetric, Thresholded, accumulate, resolve, weighted
from nnjax.nn import Dense
from nnjax.train import compiled
from tests.train._data import blobs, mlp

B, C = 40, 3
RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(B, C)).astype(np.float32)
LABELS = RNG.integers(0, C, B).astype(np.int32)
WEIGHTS = RNG.uniform(0.1, 3.0, B).astype(np.float32) * (RNG.uniform(size=B) > 0.2)
KEEP = WEIGHTS > 0
SCORES = RNG.normal(size=B).astype(np.float32)
BINARY = (SCORES + RNG.normal(size=B) > 0).astype(np.int32)
TARGETS = RNG.normal(size=(B, 2)).astype(np.float32)
PREDS = (TARGETS + RNG.normal(size=(B, 2))).astype(np.float32)


def _weighted(spec, pred, y, w, batches=1):
    """The weighted metric over ``batches`` batches, its statistics accumulated."""
    m = resolve(weighted(spec))
    parts = np.array_split(np.arange(len(w)), batches)
    stats = [m.stats(pred[i], y[i], np.ones(len(i), np.float32), w[i]) for i in parts]
    return m.result(accumulate(m, stats))


def _sk(fn, y, pred, **kw):
    return fn(y[KEEP], pred[KEEP], sample_weight=WEIGHTS[KEEP], **kw)


CLASS_IDS = LOGITS.argmax(-1)
CASES = {
    "accuracy": (LOGITS, LABELS, lambda: _sk(skm.accuracy_score, LABELS, CLASS_IDS)),
    "top_k_accuracy": (
        LOGITS, LABELS,
        lambda: _sk(skm.top_k_accuracy_score, LABELS, LOGITS, k=2, labels=range(C)),
    ),
    "f1_macro": (LOGITS, LABELS, lambda: _sk(skm.f1_score, LABELS, CLASS_IDS, average="macro")),
    "precision_micro": (
        LOGITS, LABELS, lambda: _sk(skm.precision_score, LABELS, CLASS_IDS, average="micro"),
    ),
    "recall": (SCORES, BINARY, lambda: _sk(skm.recall_score, BINARY, (SCORES > 0).astype(int))),
    "auc": (SCORES, BINARY, lambda: _sk(skm.roc_auc_score, BINARY, SCORES)),
    "r2": (PREDS, TARGETS, lambda: _sk(skm.r2_score, TARGETS, PREDS)),
    "mse": (PREDS, TARGETS, lambda: _sk(skm.mean_squared_error, TARGETS, PREDS)),
    "mae": (PREDS, TARGETS, lambda: _sk(skm.mean_absolute_error, TARGETS, PREDS)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("batches", [1, 3])
def test_weighted_metrics_equal_sklearn_sample_weight(name, batches):
    pred, y, reference = CASES[name]
    spec = metrics.top_k_accuracy(2) if name == "top_k_accuracy" else name
    got = _weighted(spec, pred, y, WEIGHTS, batches)
    np.testing.assert_allclose(got, reference(), rtol=1e-6, atol=1e-7)
    unweighted = resolve(spec)
    plain = unweighted.result(unweighted.stats(pred, y, np.ones(B, np.float32)))
    assert not np.isclose(got, plain, rtol=1e-6, atol=1e-7)  # the weights changed it


@pytest.mark.parametrize("name", ["accuracy", "f1_macro", "auc", "r2", "mse"])
def test_weights_of_one_and_zero_are_the_mask(name):
    pred, y, _ = CASES[name]
    mask = KEEP.astype(np.float32)
    plain = resolve(name)
    want = plain.result(plain.stats(pred, y, mask))
    assert _weighted(name, pred, y, mask) == want


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_weights_per_position_weigh_each_token():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 5, C)).astype(np.float32)
    labels = rng.integers(0, C, (6, 5)).astype(np.int32)
    w = rng.uniform(0.5, 2.0, (6, 5)).astype(np.float32) * (np.arange(5) < 3)
    flat = lambda a: a.reshape(30, *a.shape[2:])
    keep = flat(w) > 0
    ids = flat(logits).argmax(-1)
    want = skm.accuracy_score(flat(labels)[keep], ids[keep], sample_weight=flat(w)[keep])
    got = _weighted("accuracy", logits, labels, w, 2)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    f1 = skm.f1_score(flat(labels)[keep], ids[keep], sample_weight=flat(w)[keep], average="macro")
    np.testing.assert_allclose(_weighted("f1_macro", logits, labels, w), f1, rtol=1e-6, atol=1e-7)
    per_token = optax.softmax_cross_entropy_with_integer_labels(flat(logits), flat(labels))
    ce = np.sum(np.asarray(per_token) * flat(w)) / np.sum(w)  # the mean over real tokens
    got = _weighted("cross_entropy", logits, labels, w)
    np.testing.assert_allclose(got, ce, rtol=1e-6, atol=1e-7)
    targets = rng.normal(size=(6, 5, 2)).astype(np.float32)  # each real token a row
    preds = (targets + rng.normal(size=(6, 5, 2))).astype(np.float32)
    r2 = skm.r2_score(flat(targets)[keep], flat(preds)[keep], sample_weight=flat(w)[keep])
    np.testing.assert_allclose(_weighted("r2", preds, targets, w, 2), r2, rtol=1e-5, atol=1e-6)


def test_a_function_of_your_own_gets_the_weights_as_its_mask():
    per_example = lambda p, y: jnp.abs(p - y)[:, 0]  # (B,): a weighted mean
    want = np.average(np.abs(PREDS - TARGETS)[:, 0], weights=WEIGHTS)
    got = _weighted(per_example, PREDS, TARGETS, WEIGHTS)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    seen = lambda p, y, mask: jnp.sum(mask)  # a batch-level value: weighted by the total
    assert _weighted(seen, PREDS, TARGETS, WEIGHTS) == pytest.approx(WEIGHTS.sum(), rel=1e-6)


def test_names_thresholds_and_outputs():
    assert resolve(weighted("accuracy")).name == "weighted_accuracy"
    assert resolve(weighted("accuracy", name="acc_w")).name == "acc_w"
    spec = metrics.specs_for("mse", [weighted("accuracy")])[0]
    assert spec == weighted(Thresholded("accuracy", 0.5))  # the loss's threshold, weighted
    m = resolve(spec)
    probs, w = np.array([0.3, 0.7], np.float32), np.array([1.0, 3.0], np.float32)
    assert m.result(m.stats(probs, np.array([1, 1]), np.ones(2), w)) == 0.75
    for spec in (OutputMetric("a", weighted("accuracy")), weighted(OutputMetric("a", "accuracy"))):
        m = resolve(spec)
        out, y = {"a": LOGITS}, {"a": LABELS}
        assert m.weighted and m.result(m.stats(out, y, np.ones(B), WEIGHTS)) == pytest.approx(
            CASES["accuracy"][2](), rel=1e-6
        )
    assert resolve(OutputMetric("a", weighted("accuracy"))).name == "a_weighted_accuracy"


def test_bad_weighted_specs_are_refused():
    with pytest.raises(TypeError, match=r"weighted: the metric .* is weighted already"):
        weighted(weighted("accuracy"))
    with pytest.raises(TypeError, match=r"`name` must be a string or None, got 3"):
        weighted("accuracy", name=3)
    with pytest.raises(ValueError, match=r"`name` must not be empty"):
        weighted("accuracy", name="")
    with pytest.raises(TypeError, match=r"the metric 'out_loss' is weighted already"):
        weighted(metrics.loss_terms(metrics.losses.get({"out": "mse"}))[0])


def test_fit_logs_weighted_metrics_with_sample_and_class_weights():
    x, y = blobs(n=40)
    w = np.random.default_rng(3).uniform(0.0, 2.0, 40).astype(np.float32)
    model = mlp()
    kw = dict(loss="cross_entropy", batch_size=16, epochs=1, verbose=0, optimizer=optax.sgd(0.0))
    specs = ["accuracy", weighted("accuracy")]
    history = T.fit(model, (x, y, w), metrics=specs, class_weight={0: 3.0}, **kw).history
    ids = np.asarray(model(x)).argmax(-1)
    both = w * np.where(y == 0, 3.0, 1.0)  # training: sample x class weights
    np.testing.assert_allclose(
        history["weighted_accuracy"], [np.average(ids == y, weights=both)], rtol=1e-6, atol=1e-7
    )
    logs = T.evaluate(model, (x, y, w), loss="cross_entropy", metrics=specs, batch_size=16)
    want = np.average(ids == y, weights=w)
    np.testing.assert_allclose(logs["weighted_accuracy"], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(logs["accuracy"], np.mean(ids == y), rtol=1e-6, atol=1e-7)


def test_weighted_metrics_do_not_recompile():
    x, y = blobs(n=32)
    kw = dict(loss="cross_entropy", batch_size=16, epochs=1, verbose=0)
    specs = lambda: ["accuracy", weighted("f1"), weighted("auc", name="w_auc")]
    yb = (y > 0).astype(np.int32)
    model = Dense(4, 1, rngs=nnx.Rngs(0))
    T.fit(model, (x, yb), **(kw | {"loss": "binary_cross_entropy"}), metrics=specs())
    traces = compiled.TRACES.count
    T.fit(model, (x, yb), **(kw | {"loss": "binary_cross_entropy"}), metrics=specs())
    assert compiled.TRACES.count == traces


def test_a_weighted_name_is_checked_against_the_labels_before_compiling():
    x = np.ones((8, 4), np.float32)
    y = np.linspace(0.0, 3.0, 8).astype(np.float32)[:, None]  # continuous targets
    with pytest.raises(ValueError, match=r"metrics \['accuracy'\] compare class labels"):
        T.fit(Dense(4, 1, rngs=nnx.Rngs(0)), (x, y), loss="mse", metrics=[weighted("accuracy")],
              verbose=0)  # fmt: skip
