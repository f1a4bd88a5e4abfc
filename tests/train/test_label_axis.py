"""Labels one size-1 axis short of (or past) the model's output, as Keras takes them.

A sigmoid classifier or scalar regression has outputs ``(B, 1)``; its labels usually
come as ``(B,)``. For the losses whose targets are shaped as the predictions, ``fit``,
``evaluate`` and ``sweep`` add (or drop) that axis: training on ``(B,)`` labels must
equal training on ``(B, 1)`` ones. Before, ``fit`` refused them ("`predictions` has
shape (1, 1) but `targets` has shape (1,)").
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import losses
from nnjax.errors import ShapeError
from nnjax.nn import MLP
from tests.train._data import leaves

ONE = jax.devices()[:1]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(37, 4)).astype(np.float32)  # a padded, masked last batch
BINARY = (X[:, 0] > 0).astype(np.float32)
TARGET = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1).astype(np.float32)
KW = dict(epochs=2, batch_size=8, verbose=0, devices=ONE)


def _trained(loss, y, metrics=None, model=None, **options):
    model = model or MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    history = T.fit(model, (X, y), loss=loss, metrics=metrics, **KW, **options)
    return model, history.history


@pytest.mark.parametrize(
    ("loss", "y", "metrics"),
    [
        ("binary_cross_entropy", BINARY, ["accuracy", "precision", "recall", "auc"]),
        ("mse", TARGET, ["mae", "mse", "r2", "log_cosh"]),
        ("huber", TARGET, None),
        ("hinge", BINARY, None),
        ("mse", np.arange(37) % 5, ["mae"]),  # integer regression targets
    ],
)
@pytest.mark.slow
def test_labels_without_the_size_one_axis_train_as_with_it(loss, y, metrics):
    flat_model, flat = _trained(loss, y, metrics)
    column_model, column = _trained(loss, y[:, None], metrics)
    assert flat.keys() == column.keys()
    for name in flat:
        np.testing.assert_allclose(flat[name], column[name], rtol=1e-6, atol=1e-7)
    for a, b in zip(leaves(flat_model), leaves(column_model), strict=True):
        np.testing.assert_array_equal(a, b)
    e_flat = T.evaluate(flat_model, (X, y), loss=loss, metrics=metrics, devices=ONE)
    e_column = T.evaluate(flat_model, (X, y[:, None]), loss=loss, metrics=metrics, devices=ONE)
    assert e_flat == pytest.approx(e_column, rel=1e-6)


class Squeezed(nnx.Module):
    """A regression model whose output drops the size-1 axis: ``(B,)``."""

    def __init__(self, rngs):
        self.mlp = MLP(4, (8,), 1, rngs=rngs)

    def __call__(self, x):
        return self.mlp(x)[:, 0]


def test_column_labels_for_flat_outputs_train_as_flat_labels():
    flat_model, flat = _trained("mse", TARGET, model=Squeezed(nnx.Rngs(0)))
    column_model, column = _trained("mse", TARGET[:, None], model=Squeezed(nnx.Rngs(0)))
    np.testing.assert_allclose(flat["loss"], column["loss"], rtol=1e-6, atol=1e-9)
    for a, b in zip(leaves(flat_model), leaves(column_model), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_column_binary_labels_for_flat_scores_get_the_classification_metrics():
    # the loss took them, but the default accuracy raised "cannot match predictions of
    # shape (32,) with labels of shape (32, 1)"; auc and f1 too
    metrics = ["accuracy", "auc", "f1"]
    _, flat = _trained("binary_cross_entropy", BINARY, metrics, Squeezed(nnx.Rngs(0)))
    _, column = _trained("binary_cross_entropy", BINARY[:, None], metrics, Squeezed(nnx.Rngs(0)))
    for name in ("loss", *metrics):
        np.testing.assert_allclose(flat[name], column[name], rtol=1e-6, atol=1e-7)


def test_binary_labels_outside_0_1_are_refused_in_any_shape():
    model = MLP(4, (8,), 1, rngs=nnx.Rngs(0))
    for y in ((BINARY * 2).astype(np.int32)[:, None], (BINARY * 2)[:, None], BINARY * 2):
        with pytest.raises(ValueError, match=r"= 2\.?0? is out of range"):
            T.evaluate(model, (X, y), loss="binary_cross_entropy", devices=ONE)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_the_loss_equals_the_reference_on_column_labels():
    model, history = _trained("binary_cross_entropy", BINARY)
    logits = np.asarray(model(X))[:, 0].astype(np.float64)
    reference = np.mean(np.logaddexp(0.0, logits) - BINARY * logits)
    evaluated = T.evaluate(model, (X, BINARY), loss="binary_cross_entropy", devices=ONE)
    np.testing.assert_allclose(evaluated["loss"], reference, rtol=1e-5, atol=1e-7)
    assert len(history["loss"]) == 2


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
def test_sweep_aligns_the_labels_too():
    members = T.grid(learning_rate=[0.01, 0.1])
    make = lambda rngs: MLP(4, (8,), 1, rngs=rngs)
    common = dict(loss="mse", members=members, epochs=2, batch_size=8, verbose=0)
    flat = T.sweep(make, (X, TARGET), **common).history["loss"]
    column = T.sweep(make, (X, TARGET[:, None]), **common).history["loss"]
    np.testing.assert_allclose(flat, column, rtol=1e-6, atol=1e-9)


def test_other_mismatches_and_class_ids_are_still_refused():
    with pytest.raises(ShapeError, match=r"has shape \(37, 2\) but `targets` has shape \(37,\)"):
        T.fit(MLP(4, (8,), 2, rngs=nnx.Rngs(0)), (X, TARGET), loss="mse", **KW)
    labels = (X[:, 0] > 0).astype(np.int32)
    with pytest.raises(ShapeError, match="cross_entropy"):  # ids (B, 2) for 3 classes
        T.fit(
            MLP(4, (8,), 3, rngs=nnx.Rngs(0)),
            (X, labels[:, None].repeat(2, 1)),
            loss="cross_entropy",
            **KW,
        )
    with pytest.raises(ShapeError, match="must match"):  # the loss itself stays strict
        losses.mse(jnp.zeros((3, 1)), jnp.zeros(3))


@pytest.mark.filterwarnings("ignore:.*copies of its rows:UserWarning")  # a batch-level loss
def test_a_users_loss_gets_the_labels_as_given():
    shapes = []

    def loss(predictions, y):
        shapes.append(y.shape)
        return jnp.mean((predictions[:, 0] - y) ** 2)

    _trained(loss, TARGET)
    assert shapes and all(shape[1:] == () for shape in shapes)
    assert losses.mse in losses.TARGETS_LIKE_PREDICTIONS
    assert losses.cross_entropy not in losses.TARGETS_LIKE_PREDICTIONS


CLASSES = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 0)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_class_ids_as_a_column_train_as_class_ids():
    """Integer labels ``(B, 1)`` for ``C`` outputs, as Keras's sparse losses take them:
    the same weights, losses and metrics as labels ``(B,)``, with class weights too; an
    id out of range is refused before anything compiles, as for ``(B,)``."""
    metrics = ["accuracy", "top_k_accuracy", "f1"]
    kw = dict(loss="cross_entropy", metrics=metrics, class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    make = lambda: MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    flat_model, flat = _trained(y=CLASSES, model=make(), **kw)
    column_model, column = _trained(y=CLASSES[:, None], model=make(), **kw)
    for name in ("loss", *metrics):
        np.testing.assert_allclose(flat[name], column[name], rtol=1e-6, atol=1e-7)
    for a, b in zip(leaves(flat_model), leaves(column_model), strict=True):
        np.testing.assert_array_equal(a, b)
    bad = CLASSES[:, None].copy()
    bad[5, 0] = 3
    with pytest.raises(ValueError, match=r"y\[5\] = 3 is out of range"):
        T.evaluate(flat_model, (X, bad), loss="cross_entropy", devices=ONE)
