"""nnjax.metrics: batch functions, and exact streaming metrics equal to scikit-learn's
for any batch size, padding and device count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics as skm
from flax import nnx

from nnjax import metrics
from nnjax.errors import ShapeError

rng = np.random.default_rng(1)
LOGITS = rng.normal(size=(50, 4)).astype(np.float32)
LABELS = rng.integers(0, 4, size=50)


def test_accuracy_integer_labels():
    expected = np.mean(LOGITS.argmax(-1) == LABELS)
    np.testing.assert_allclose(metrics.accuracy(LOGITS, LABELS), expected)


def test_accuracy_one_hot_labels():
    one_hot = np.eye(4)[LABELS]
    np.testing.assert_allclose(
        metrics.accuracy(LOGITS, one_hot), np.mean(LOGITS.argmax(-1) == LABELS)
    )


def test_class_ids_as_a_column():
    """Class ids ``(B, 1)``, as Keras's sparse metrics take them, for logits ``(B, C)``."""
    column = LABELS[:, None]
    np.testing.assert_allclose(metrics.accuracy(LOGITS, column), metrics.accuracy(LOGITS, LABELS))
    mask = np.ones(len(LABELS))
    for metric in map(metrics.resolve, (metrics.top_k_accuracy(2), "f1", "accuracy")):
        got = metric.result(metric.stats(jnp.asarray(LOGITS), jnp.asarray(column), mask))
        want = metric.result(metric.stats(jnp.asarray(LOGITS), jnp.asarray(LABELS), mask))
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
    with pytest.raises(ValueError, match=r"is not a class id in \[0, 4\)"):
        metrics.accuracy(LOGITS, np.full((50, 1), 4))


def test_accuracy_binary_logits():
    z = rng.normal(size=(50,)).astype(np.float32)
    y = rng.integers(0, 2, size=50)
    expected = np.mean((z > 0) == (y == 1))
    np.testing.assert_allclose(metrics.accuracy(z, y), expected)
    np.testing.assert_allclose(metrics.accuracy(z[:, None], y), expected)


def test_accuracy_mismatch_raises():
    with pytest.raises(ValueError, match="accuracy: cannot match"):
        metrics.accuracy(jnp.zeros((5, 1)), jnp.zeros((4,)))


def test_accuracy_under_jit_and_vmap():
    jitted = jax.jit(metrics.accuracy)
    np.testing.assert_allclose(jitted(LOGITS, LABELS), metrics.accuracy(LOGITS, LABELS))
    per_row = jax.vmap(metrics.accuracy)(LOGITS[:, None, :], LABELS[:, None])
    np.testing.assert_array_equal(per_row, (LOGITS.argmax(-1) == LABELS).astype(np.float32))


def test_get_and_resolve():
    assert metrics.get("acc") is metrics.accuracy
    with pytest.raises(ValueError, match=r"unknown metric 'f1'.*accuracy"):
        metrics.get("f1")
    assert metrics.resolve("f1").name == "f1"
    with pytest.raises(ValueError, match=r"unknown metric 'f2'.*f1_macro"):
        metrics.resolve("f2")
    assert metrics.as_specs("accuracy") == ("accuracy",)


def _streamed(metric, pred, y, batch):
    """The metric over batches of ``batch`` rows, the last one padded and masked."""
    m = metrics.resolve(metric)
    n = len(y)
    pad = -n % batch
    rows = np.r_[np.arange(n), np.zeros(pad, int)]
    mask = (np.arange(n + pad) < n).astype(np.float32)
    stats = [
        jax.device_get(
            jax.jit(m.stats)(pred[rows[i : i + batch]], y[rows[i : i + batch]], mask[i : i + batch])
        )
        for i in range(0, n + pad, batch)
    ]
    return m.result(metrics.accumulate(m, stats))


N = 103
MULTI = rng.normal(size=(N, 5)).astype(np.float32)
MULTI_Y = rng.integers(0, 5, size=N)
BIN = rng.normal(size=(N, 1)).astype(np.float32)
BIN_Y = (rng.random(N) < 1 / (1 + np.exp(-2 * BIN[:, 0]))).astype(np.int32)
WIDE = rng.normal(size=(N, 9)).astype(np.float32)
WIDE_Y = rng.integers(0, 9, size=N)
REG = rng.normal(size=(N, 3)).astype(np.float32)
REG_Y = rng.normal(size=(N, 3)).astype(np.float32)

CASES = [
    ("accuracy", MULTI, MULTI_Y, lambda: skm.accuracy_score(MULTI_Y, MULTI.argmax(1))),
    ("top_k_accuracy", WIDE, WIDE_Y, lambda: skm.top_k_accuracy_score(WIDE_Y, WIDE, k=5)),
    (
        metrics.top_k_accuracy(2),
        MULTI,
        MULTI_Y,
        lambda: skm.top_k_accuracy_score(MULTI_Y, MULTI, k=2),
    ),
    ("precision", BIN, BIN_Y, lambda: skm.precision_score(BIN_Y, BIN[:, 0] > 0)),
    ("recall", BIN, BIN_Y, lambda: skm.recall_score(BIN_Y, BIN[:, 0] > 0)),
    ("f1", BIN, BIN_Y, lambda: skm.f1_score(BIN_Y, BIN[:, 0] > 0)),
    ("f1_macro", MULTI, MULTI_Y, lambda: skm.f1_score(MULTI_Y, MULTI.argmax(1), average="macro")),
    ("f1_micro", MULTI, MULTI_Y, lambda: skm.f1_score(MULTI_Y, MULTI.argmax(1), average="micro")),
    (
        "precision_macro",
        MULTI,
        MULTI_Y,
        lambda: skm.precision_score(MULTI_Y, MULTI.argmax(1), average="macro"),
    ),
    (
        "recall_macro",
        MULTI,
        MULTI_Y,
        lambda: skm.recall_score(MULTI_Y, MULTI.argmax(1), average="macro"),
    ),
    ("auc", BIN, BIN_Y, lambda: skm.roc_auc_score(BIN_Y, BIN[:, 0])),
    ("mse", REG, REG_Y, lambda: skm.mean_squared_error(REG_Y, REG)),
    ("mae", REG, REG_Y, lambda: skm.mean_absolute_error(REG_Y, REG)),
    (
        "cross_entropy",
        MULTI,
        MULTI_Y,
        lambda: skm.log_loss(MULTI_Y, jax.nn.softmax(MULTI), labels=range(5)),
    ),
]


@pytest.mark.parametrize("batch", [1, 8, 32, 103])
@pytest.mark.parametrize(
    "metric, pred, y, expected",
    CASES,
    ids=[c[0] if isinstance(c[0], str) else c[0].name for c in CASES],
)
def test_streamed_metric_equals_sklearn(metric, pred, y, expected, batch):
    np.testing.assert_allclose(_streamed(metric, pred, y, batch), expected(), rtol=1e-5, atol=1e-6)


def test_auc_counts_ties_as_one_half():
    scores = np.array([0.5, 0.5, 0.5, 0.1, 0.9])
    labels = np.array([0, 1, 1, 0, 1])
    np.testing.assert_allclose(
        metrics.roc_auc_score(scores, labels), skm.roc_auc_score(labels, scores)
    )


def test_auc_of_float64_scores_keeps_their_precision():
    """Scores closer than float32's precision were rounded to ties (0.5, not 0.75)."""
    scores = np.array([1.0, 1.0 + 1e-9, 2.0, 2.0 + 1e-9])
    labels = np.array([0, 1, 0, 1])
    with jax.enable_x64(True):
        got = _streamed("auc", scores, labels, 2)
    np.testing.assert_allclose(got, skm.roc_auc_score(labels, scores), rtol=1e-12, atol=1e-12)
    assert got == 0.75


def test_auc_with_a_nan_score_is_nan():
    """scikit-learn raises; sorting the NaN last gave a confident 1.0 before."""
    scores, labels = np.array([0.1, 0.2, np.nan, 0.9]), np.array([0, 0, 1, 1])
    assert np.isnan(metrics.roc_auc_score(scores, labels))
    assert np.isnan(_streamed("auc", scores.astype(np.float32), labels, 2))


def test_default_metrics_follow_the_loss():
    assert metrics.default_metrics("cross_entropy") == ("accuracy",)
    assert metrics.default_metrics("binary_crossentropy") == ("accuracy",)
    assert metrics.default_metrics("mse") == ()
    assert metrics.default_metrics(lambda p, y: p) == ()


@pytest.mark.parametrize("devices", [1, 4])
def test_evaluate_metrics_equal_sklearn_with_padding_and_devices(devices):
    import nnjax.train as T
    from nnjax.nn import MLP

    model = MLP(5, (8,), 5, rngs=nnx.Rngs(0))
    x = rng.normal(size=(N, 5)).astype(np.float32)
    names = ["accuracy", metrics.top_k_accuracy(2), "f1_macro", "f1_micro", "precision_macro"]
    logs = T.evaluate(
        model,
        (x, MULTI_Y),
        loss="cross_entropy",
        metrics=names,
        batch_size=12,
        devices=jax.devices()[:devices],
    )
    pred = np.asarray(model(x))
    labels = pred.argmax(1)
    expected = {
        "loss": skm.log_loss(MULTI_Y, jax.nn.softmax(pred), labels=range(5)),
        "accuracy": skm.accuracy_score(MULTI_Y, labels),
        "top_2_accuracy": skm.top_k_accuracy_score(MULTI_Y, pred, k=2),
        "f1_macro": skm.f1_score(MULTI_Y, labels, average="macro"),
        "f1_micro": skm.f1_score(MULTI_Y, labels, average="micro"),
        "precision_macro": skm.precision_score(MULTI_Y, labels, average="macro", zero_division=0),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(logs[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_batch_level_loss_evaluates_on_whole_batches():
    """A loss of the whole batch (the variance of the errors) is not per example."""
    import nnjax.train as T
    from nnjax.nn import MLP

    def error_variance(pred, y):
        return jnp.var(pred - y)

    model = MLP(3, (4,), 1, rngs=nnx.Rngs(0))
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = rng.normal(size=(64, 1)).astype(np.float32)
    logs = T.evaluate(
        model, (x, y), loss=error_variance, metrics=(), batch_size=16, devices=jax.devices()[:1]
    )
    err = np.asarray(model(x)) - y
    expected = np.mean([np.var(err[i : i + 16]) for i in range(0, 64, 16)])
    assert expected > 0.01
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5, atol=1e-6)


def test_a_batch_level_metric_taking_mask_leaves_the_padding_out():
    """N=20 in batches of 8: the last batch has 4 real rows and 4 padded copies."""
    import nnjax.train as T
    from nnjax.nn import MLP

    def _variance(err, mask):
        mean = jnp.sum(err * mask) / jnp.sum(mask)
        return jnp.sum((err - mean) ** 2 * mask) / jnp.sum(mask)

    def masked_error_variance(pred, y, mask=None):
        err = (pred - y)[:, 0]
        return _variance(err, jnp.ones_like(err) if mask is None else mask)

    def padded_error_variance(pred, y):  # the same value, blind to the mask
        err = (pred - y)[:, 0]
        return _variance(err, jnp.ones_like(err))

    def masked_abs_error(pred, y, *, mask):  # linear: equals the whole-data mean
        return jnp.sum(jnp.abs(pred - y)[:, 0] * mask) / jnp.sum(mask)

    model = MLP(3, (4,), 1, rngs=nnx.Rngs(0))
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.normal(size=(20, 1)).astype(np.float32)
    specs = [masked_error_variance, padded_error_variance, masked_abs_error]
    logs = T.evaluate(model, (x, y), loss="mse", metrics=specs, batch_size=8, devices=jax.devices())
    err = (np.asarray(model(x)) - y)[:, 0]
    batches = [err[0:8], err[8:16], err[16:20]]  # the unpadded batches
    expected = np.average([np.var(b) for b in batches], weights=[len(b) for b in batches])
    np.testing.assert_allclose(logs["masked_error_variance"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["masked_abs_error"], np.mean(np.abs(err)), rtol=1e-5, atol=1e-6)
    # blind to the mask, the last batch's variance counts the padded copies
    assert abs(logs["padded_error_variance"] - expected) > 1e-3


def test_accuracy_does_not_broadcast_one_prediction_over_the_batch():
    # a single prediction used to be broadcast against four labels: 0.75, no error
    pattern = r"accuracy: integer `labels` have shape \(4,\) but `logits` has shape \(1, 3\)"
    with pytest.raises(ShapeError, match=pattern):
        metrics.accuracy(jnp.array([[5.0, 0.0, 0.0]]), jnp.array([0, 0, 0, 1]))
    with pytest.raises(ShapeError, match=r"accuracy: .*shape \(3,\) .*\(4, 3\).*must have"):
        jax.jit(metrics.accuracy)(jnp.zeros((4, 3)), jnp.array([0, 1, 2]))


@pytest.mark.parametrize("name", ["accuracy", "f1", "precision_macro", "top_k_accuracy"])
def test_streaming_class_metrics_compare_batch_shapes_under_jit(name):
    m = metrics.resolve(name)
    with pytest.raises(ShapeError, match=rf"{name}: integer `labels` have shape \(3,\) .*\(4, 3\)"):
        jax.jit(m.stats)(jnp.zeros((4, 3)), jnp.array([0, 1, 2]), jnp.ones(4))


@pytest.mark.parametrize("name", ["accuracy", "f1_macro", "top_k_accuracy"])
def test_concrete_class_ids_out_of_range_raise(name):
    pattern = r"`labels\[2\]` = 7 is not a class id in \[0, 3\)"
    labels = jnp.array([0, 1, 7, -1])
    with pytest.raises(ValueError, match=f"{name}: {pattern}"):
        metrics.resolve(name).stats(jnp.zeros((4, 3)), labels, jnp.ones(4))
    with pytest.raises(ValueError, match=f"accuracy: {pattern}.*2 bad values"):
        metrics.accuracy(jnp.zeros((4, 3)), labels)


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_top_k_needs_a_positive_int(k):
    with pytest.raises(ValueError, match=rf"top_k_accuracy: `k` must be a positive int, got {k}"):
        metrics.top_k_accuracy(k)


def test_top_k_accepts_a_numpy_int():
    assert metrics.top_k_accuracy(np.int64(3)).name == "top_3_accuracy"


def test_roc_auc_score_lengths_must_match():
    pattern = r"roc_auc_score: `scores` has shape \(4,\) but `labels` has shape \(5,\)"
    with pytest.raises(ShapeError, match=pattern):
        metrics.roc_auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1, 1]))
    with pytest.raises(ShapeError, match=pattern):  # all one class: used to return nan
        metrics.roc_auc_score(np.zeros(4), np.zeros(5))
    with pytest.raises(ShapeError, match=r"auc: .*predictions \(4, 2\) and labels \(3,\)"):
        metrics.resolve("auc").stats(jnp.zeros((4, 2)), jnp.array([0, 1, 1]), jnp.ones(4))


@pytest.mark.parametrize("name", ["accuracy", "f1", "auc", "mse", "top_k_accuracy"])
def test_the_mask_needs_one_entry_per_example(name):
    pred, y = jnp.zeros((4, 3)), jnp.array([0, 1, 2, 0])
    if name in ("f1", "auc"):  # binary scores and labels (a 2 is refused as a label)
        pred, y = jnp.zeros(4), jnp.array([0, 1, 1, 0])
    elif name == "mse":
        y = jnp.zeros((4, 3))
    with pytest.raises(ShapeError, match=rf"{name}: `mask` has shape \(3,\), expected \(4,\)"):
        metrics.resolve(name).stats(pred, y, jnp.ones(3))


def test_classification_metric_lists_the_valid_options():
    pattern = r"'weighted'.*'precision', 'recall', 'f1'.*None, 'binary', 'macro', 'micro'"
    with pytest.raises(ValueError, match=f"classification_metric: unknown metric 'f1' .*{pattern}"):
        metrics.classification_metric("f1", "weighted")


@pytest.mark.slow
def test_value_checks_skip_traced_labels_under_jit():
    """Traced labels are never read: no concretization error, and out-of-range ids (not
    checkable) count as misses, as documented."""
    bad = jnp.asarray(LABELS).at[:3].set(jnp.array([4, -1, 9]))
    np.testing.assert_allclose(
        jax.jit(metrics.accuracy)(LOGITS, bad), np.mean(LOGITS.argmax(-1) == np.asarray(bad))
    )
    for name in ("accuracy", "f1_macro", "top_k_accuracy", "precision"):
        m = metrics.resolve(name)
        jax.device_get(jax.jit(m.stats)(LOGITS, bad, jnp.ones(50)))
        eager = m.result(m.stats(LOGITS, LABELS, jnp.ones(50)))
        assert m.result(jax.jit(m.stats)(LOGITS, LABELS, jnp.ones(50))) == pytest.approx(eager)


def test_per_example_values_of_an_empty_batch_are_empty():
    """``reshape(B, -1)`` cannot infer the size of an empty batch (it raised
    ZeroDivisionError); the per-example mean, the per-output losses and the gradient
    norms now give ``(0,)``."""
    from nnjax import losses
    from nnjax.train import per_example_norms

    empty = jnp.zeros((0, 3))
    assert metrics.per_example(losses.mse)(empty, empty).shape == (0,)
    both = losses.get({"a": "mse", "b": "mae"})
    assert both({"a": empty, "b": empty}, {"a": empty, "b": empty}, reduction="none").shape == (0,)
    assert per_example_norms({"w": jnp.zeros((0, 2, 2)), "b": jnp.zeros((0,))}).shape == (0,)
    rows = metrics.per_example(losses.mse)(jnp.ones((2, 3, 4)), jnp.zeros((2, 3, 4)))
    np.testing.assert_allclose(rows, [1.0, 1.0])


def test_float_class_ids_must_be_whole_numbers():
    logits = jnp.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    assert float(metrics.accuracy(logits, jnp.array([1.0, 2.0]))) == 0.5  # whole: read as ids
    with pytest.raises(ValueError, match=r"accuracy: `labels\[0\]` = 1.5 is not a class id"):
        metrics.accuracy(logits, jnp.array([1.5, 2.7]))  # was truncated to 1 and 2: 0.5
    from nnjax.train import evaluate

    class Identity(nnx.Module):
        def __call__(self, x):
            return x

    x = np.asarray(logits)
    with pytest.raises(ValueError, match=r"read y as class ids, but y.flat\[0\] = 1.5"):
        loss = lambda p, y: jnp.mean(p)  # a loss that reads no labels
        evaluate(Identity(), (x, np.array([1.5, 2.7], np.float32)), loss=loss, metrics=["accuracy"])


def test_top_k_of_one_binary_score_is_refused():
    # through fit/evaluate the labels are traced and 1 counted as a miss: a perfect
    # binary classifier logged 0.5
    from nnjax.train import evaluate

    class Identity(nnx.Module):
        def __call__(self, x):
            return x

    y = np.array([0, 1] * 5)
    scores = np.where(y[:, None] > 0, 5.0, -5.0).astype(np.float32)
    with pytest.raises(ShapeError, match=r"top_k_accuracy: ranks the scores of C >= 2 classes"):
        evaluate(Identity(), (scores, y), loss="binary_cross_entropy", metrics=["top_k_accuracy"])


@pytest.mark.parametrize("name", ["accuracy", "auc", "f1", "precision_binary"])
def test_binary_labels_with_a_unit_axis_for_flat_scores(name):
    scores, labels = jnp.array([2.0, -1.0, 0.5, -3.0]), jnp.array([1, 0, 0, 0])
    m = metrics.resolve(name)
    flat = m.result(m.stats(scores, labels, jnp.ones(4)))
    column = m.result(m.stats(scores, labels[:, None], jnp.ones(4)))
    assert flat == column
