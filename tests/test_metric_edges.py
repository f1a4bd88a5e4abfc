"""Edge inputs of the losses and metrics: NaN logits, bad binary labels, no examples,
PyTorch tensors and boolean class ids; scikit-learn and PyTorch as the references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.metrics as skm

from nnjax import losses, metrics

torch = pytest.importorskip("torch")

# Edge grids against scikit-learn and PyTorch: the slow group (``pytest -m slow``, which CI
# runs). The default run keeps these functions' own tests (test_losses.py,
# test_metrics.py, test_activations.py) and stays under 10 minutes.
pytestmark = pytest.mark.slow

rng = np.random.default_rng(7)


def _streamed(name, pred, y, mask=None):
    m = metrics.resolve(name)
    mask = jnp.ones(len(pred)) if mask is None else mask
    return m.result(metrics.accumulate(m, [m.stats(pred, y, mask)]))


# --- 1. A row with NaN logits is a miss ------------------------------------------------


def test_all_nan_logits_are_misses_not_class_0():
    """They counted as class 0 (accuracy 0.5 here) while top_k_accuracy counted misses."""
    logits, y = jnp.full((4, 3), jnp.nan), jnp.array([0, 0, 1, 2])
    assert float(metrics.accuracy(logits, y)) == 0.0
    assert float(jax.jit(metrics.accuracy)(logits, y)) == 0.0
    for name in ("accuracy", "top_1_accuracy", "f1_macro", "recall_micro", "precision_macro"):
        spec = metrics.top_k_accuracy(1) if name == "top_1_accuracy" else name
        m = metrics.resolve(spec)
        assert m.result(m.stats(logits, y, jnp.ones(4))) == 0.0, name
    one_hot = jax.nn.one_hot(y, 3)
    assert float(metrics.accuracy(logits, one_hot)) == 0.0


def test_rows_with_a_nan_match_top_1_accuracy_and_sklearn():
    logits = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 4, 60)
    logits[::5, 1] = np.nan  # one NaN per fifth row, wherever the label is
    nan_row = np.isnan(logits).any(-1)
    pred = np.where(nan_row, (y + 1) % 4, np.nan_to_num(logits, nan=-np.inf).argmax(-1))
    expected = skm.accuracy_score(y, pred)
    np.testing.assert_allclose(metrics.accuracy(logits, y), expected, atol=1e-6)
    np.testing.assert_allclose(_streamed("accuracy", logits, y), expected, atol=1e-12)
    top1 = metrics.top_k_accuracy(1)
    assert _streamed(top1, logits, y) == _streamed("accuracy", logits, y)
    # a NaN row predicts a wrong class: a false positive too, so micro precision stays
    # accuracy (a diverged model scored better when its NaN rows predicted no class)
    for kind, score in (("f1", skm.f1_score), ("precision", skm.precision_score)):
        for average in ("macro", "micro"):
            ref = score(y, pred, average=average, zero_division=0)
            got = _streamed(f"{kind}_{average}", logits, y)
            np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=f"{kind}_{average}")
    np.testing.assert_allclose(_streamed("precision_micro", logits, y), expected, atol=1e-12)


def test_nan_binary_logits_are_misses():
    logits, y = jnp.array([[jnp.nan], [jnp.nan], [2.0], [-1.0]]), jnp.array([0, 1, 1, 0])
    assert float(metrics.accuracy(logits, y)) == 0.5
    assert float(jax.jit(metrics.accuracy)(logits[:, 0], y)) == 0.5
    assert _streamed("accuracy", logits, y) == 0.5
    # the NaN rows predict 1 for label 0 (a false positive), 0 for label 1 (a false negative)
    assert _streamed("recall", logits, y) == 0.5
    assert _streamed("precision", logits, y) == 0.5


# --- 2. Binary labels outside [0, 1] ---------------------------------------------------


def test_binary_labels_outside_0_1_are_refused_when_concrete():
    """A label 2 was read as class 1: accuracy 1.0 where scikit-learn gives 2/3."""
    logits, y = jnp.array([[1.0], [1.0], [-1.0]]), jnp.array([1, 2, 0])
    pattern = r"accuracy: `labels\[1\]` = 2 is not a binary label: .*example \(shape \(3, 1\)\)"
    with pytest.raises(ValueError, match=pattern):
        metrics.accuracy(logits, y)
    with pytest.raises(ValueError, match=pattern):
        _streamed("accuracy", logits, y)
    for name in ("f1", "precision_binary", "auc"):
        with pytest.raises(ValueError, match=rf"{name}: `labels\[1\]` = 2 is not a binary label"):
            _streamed(name, logits, y)
    with pytest.raises(ValueError, match=r"`labels\[0\]` = -2.0 is not a binary label"):
        metrics.accuracy(jnp.array([0.5, 1.0]), np.array([-2.0, 1.0]))
    # under jit the labels are not checked: class 1 where > 0.5, as documented
    assert float(jax.jit(metrics.accuracy)(logits, y)) == 1.0


def test_binary_labels_in_0_1_and_bool_are_accepted():
    logits = jnp.array([[1.0], [-2.0], [0.5], [-0.1]])
    y = np.array([1, 0, 0, 1])
    expected = skm.accuracy_score(y, np.asarray(logits[:, 0] > 0).astype(int))
    for labels in (y, y.astype(bool), y.astype(np.float32), np.array([0.9, 0.1, 0.2, 0.8])):
        np.testing.assert_allclose(metrics.accuracy(logits, labels), expected)
        np.testing.assert_allclose(_streamed("accuracy", logits, labels), expected)
    ref = skm.f1_score(y, np.asarray(logits[:, 0] > 0).astype(int))
    np.testing.assert_allclose(_streamed("f1", logits, y.astype(bool)), ref)
    np.testing.assert_allclose(
        _streamed("auc", logits, y.astype(bool)), skm.roc_auc_score(y, logits[:, 0])
    )


def test_hinge_labels_minus_one_and_one_are_class_0_and_1():
    """-1/1 labels (the hinge losses') were accepted before the label check: still are."""
    logits, y = jnp.array([0.5, -1.0, 2.0, -0.2, 0.1]), np.array([1, -1, -1, 1, 1])
    binary = (y > 0).astype(int)
    expected = skm.accuracy_score(binary, np.asarray(logits > 0).astype(int))
    np.testing.assert_allclose(metrics.accuracy(logits, y), expected, atol=1e-6)
    np.testing.assert_allclose(_streamed("accuracy", logits, y), expected, atol=1e-12)
    auc = skm.roc_auc_score(binary, np.asarray(logits))
    np.testing.assert_allclose(_streamed("auc", logits, y), auc, atol=1e-12)


# --- 3. No examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "logits, labels, shape",
    [
        (jnp.zeros((0, 3)), jnp.zeros((0,), jnp.int32), r"\(0, 3\)"),
        (jnp.zeros((0, 3)), jnp.zeros((0, 3)), r"\(0, 3\)"),
        (jnp.zeros((0, 1)), jnp.zeros((0,), jnp.int32), r"\(0, 1\)"),
    ],
    ids=["ids", "one-hot", "binary"],
)
def test_accuracy_of_no_examples_raises_as_sklearn(logits, labels, shape):
    """It returned NaN (a mean of nothing); scikit-learn raises."""
    with pytest.raises(ValueError, match="Found empty input array"):
        skm.accuracy_score(np.zeros(0, int), np.zeros(0, int))
    pattern = rf"accuracy: no examples \(predictions of shape {shape}\)"
    with pytest.raises(ValueError, match=pattern):
        metrics.accuracy(logits, labels)
    with pytest.raises(ValueError, match=pattern):  # the shape is static: also under jit
        jax.jit(metrics.accuracy)(logits, labels)


def test_roc_auc_score_of_no_examples_raises():
    with pytest.raises(ValueError, match=r"roc_auc_score: no examples \(scores of shape \(0,\)\)"):
        metrics.roc_auc_score(np.zeros(0), np.zeros(0))


@pytest.mark.parametrize("rows", [0, 3], ids=["no-rows", "all-masked"])
def test_streaming_results_of_no_examples_are_keras_zero_or_nan(rows):
    """Keras's metrics give 0.0 before any update, as fit's loss of no examples; auc and
    r2 (undefined without two classes or two rows) give NaN."""
    mask = jnp.zeros(rows)
    ids, logits = jnp.zeros((rows,), jnp.int32), jnp.zeros((rows, 3))
    for name in ("accuracy", "top_k_accuracy", "f1", "f1_micro", "precision", "recall"):
        assert _streamed(name, logits, ids, mask) == 0.0, name
    values = jnp.zeros((rows, 1))
    for name in ("mse", "mae", "huber", "accuracy"):
        assert _streamed(name, values, values, mask) == 0.0, name
    for name in ("auc", "r2"):
        assert np.isnan(_streamed(name, values, values, mask)), name


# --- 4. PyTorch tensors ------------------------------------------------------------------


def _torch_pair(name):
    p = rng.uniform(0.1, 0.9, size=(6, 3)).astype(np.float32)
    if name in ("cross_entropy", "sparse_categorical_crossentropy"):
        return p, rng.integers(0, 3, 6)
    if name in ("categorical_hinge", "categorical_crossentropy"):
        return p, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 6)]
    if name in ("kl_divergence", "kld", "kullback_leibler_divergence"):
        return p, p[::-1] / p[::-1].sum(-1, keepdims=True)
    return p, rng.integers(0, 2, (6, 3)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(losses._REGISTRY))
def test_every_loss_takes_torch_tensors_as_numpy(name):
    """``Cannot interpret 'torch.int64' as a data type``: now read as fit reads them."""
    fn = losses.get(name)
    p, t = _torch_pair(name)
    expected = fn(p, t)
    got = fn(torch.tensor(p, requires_grad=True), torch.from_numpy(t))  # detached
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_torch_bfloat16_and_bool_tensors():
    p = torch.tensor([[0.5, -1.0], [2.0, 0.0]], dtype=torch.bfloat16)
    ref = torch.nn.functional.cross_entropy(p.float(), torch.tensor([1, 0]))
    got = losses.cross_entropy(p, torch.tensor([True, False]))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(float(got), float(ref), atol=2e-2)
    assert float(metrics.accuracy(p, torch.tensor([1, 0]))) == 0.5


def test_metrics_take_torch_tensors():
    own = np.random.default_rng(11)  # not the module's: its draws depend on the test order
    logits = own.normal(size=(20, 3)).astype(np.float32)
    y = own.integers(0, 3, 20)
    tl, ty, tm = torch.tensor(logits, requires_grad=True), torch.from_numpy(y), torch.ones(20)
    np.testing.assert_allclose(metrics.accuracy(tl, ty), metrics.accuracy(logits, y))
    for name in ("accuracy", "top_k_accuracy", "f1_macro", "recall_micro", "cross_entropy"):
        m = metrics.resolve(name)
        want = m.result(m.stats(logits, y, np.ones(20, np.float32)))
        assert m.result(m.stats(tl, ty, tm)) == pytest.approx(want), name
    score, label = logits[:, 0], (y > 0).astype(np.float32)
    want = skm.roc_auc_score(label, score)
    got = metrics.roc_auc_score(torch.from_numpy(score), torch.from_numpy(label))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)  # a sum in another order
    streamed = _streamed("auc", torch.from_numpy(score), torch.from_numpy(label), tm)
    assert streamed == pytest.approx(want, rel=1e-12, abs=1e-12)
    for name in ("mse", "r2"):
        got = _streamed(name, torch.from_numpy(logits), torch.from_numpy(logits[::-1].copy()), tm)
        assert got == pytest.approx(_streamed(name, logits, logits[::-1].copy())), name


# --- 5. Boolean class ids ----------------------------------------------------------------


def test_cross_entropy_takes_bool_class_ids_as_keras():
    """Bool labels of shape logits.shape[:-1] were refused ("look like class ids")."""
    logits = rng.normal(size=(8, 3)).astype(np.float32)
    ids = rng.integers(0, 2, 8)
    flags = ids.astype(bool)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(ids))
    np.testing.assert_allclose(
        losses.cross_entropy(logits, flags), float(ref), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        losses.cross_entropy(logits, flags[:, None]), float(ref), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        jax.jit(losses.cross_entropy)(logits, flags), float(ref), rtol=1e-6, atol=1e-7
    )
    smooth = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(ids), label_smoothing=0.1
    )
    got = losses.cross_entropy(logits, flags, label_smoothing=0.1)
    np.testing.assert_allclose(got, float(smooth), rtol=1e-6, atol=1e-7)
    per_row = losses.cross_entropy(logits, flags, reduction="none")
    np.testing.assert_allclose(per_row, losses.cross_entropy(logits, ids, reduction="none"))
    # bool labels of the logits' shape stay one-hot
    one_hot = np.eye(3, dtype=bool)[rng.integers(0, 3, 8)]
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(one_hot.argmax(-1))
    )
    np.testing.assert_allclose(
        losses.cross_entropy(logits, one_hot), float(ref), rtol=1e-6, atol=1e-7
    )


def test_bool_labels_elsewhere_still_work():
    logits = rng.normal(size=(8, 2)).astype(np.float32)
    flags = rng.integers(0, 2, 8).astype(bool)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits[:, 0]), torch.from_numpy(flags).float()
    )
    np.testing.assert_allclose(
        losses.binary_cross_entropy(logits[:, 0], flags), float(ref), rtol=1e-6, atol=1e-7
    )
    want = skm.accuracy_score(flags, logits.argmax(-1))
    np.testing.assert_allclose(metrics.accuracy(logits, flags), want, atol=1e-6)
    np.testing.assert_allclose(
        _streamed("f1", logits, flags), skm.f1_score(flags, logits.argmax(-1)), atol=1e-12
    )
    np.testing.assert_allclose(
        _streamed("auc", logits, flags),
        skm.roc_auc_score(flags, logits[:, 1] - logits[:, 0]),
        atol=1e-12,
    )
