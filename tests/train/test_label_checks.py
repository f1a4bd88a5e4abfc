"""Named metrics are checked against the outputs and labels before anything compiles."""

import numpy as np
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import evaluate, fit


def _classes(n=40):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    return x, np.arange(n) % 3


def _classifier():
    return MLP(4, (8,), 3, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("metric", ["mse", "r2", "auc", "mae"])
def test_a_regression_or_score_metric_on_class_ids_is_named_before_training(metric):
    words = rf"`metrics`: '{metric}' compares outputs \(B, 3\) with labels \(B,\);.*'accuracy'"
    with pytest.raises(ValueError, match=words) as caught:
        fit(_classifier(), _classes(), loss="cross_entropy", metrics=[metric], verbose=0)
    assert len(caught.traceback) < 12  # raised by the checks, not inside the traced step
    with pytest.raises(ValueError, match=words):
        evaluate(_classifier(), _classes(), loss="cross_entropy", metrics=[metric])


@pytest.mark.parametrize(
    "metric", ["accuracy", "top_k_accuracy", "precision", "recall", "f1", "cross_entropy"]
)
def test_metrics_of_class_ids_pass(metric):
    fit(_classifier(), _classes(), loss="cross_entropy", metrics=[metric], verbose=0)


@pytest.mark.parametrize("column", [False, True], ids=["labels-(B,)", "labels-(B,1)"])
def test_regression_metrics_on_regression_targets_pass(column):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = x.sum(1)[:, None] if column else x.sum(1)
    model = MLP(3, (4,), 1, rngs=nnx.Rngs(0))
    fit(model, (x, y), loss="mse", metrics=["mse", "mae", "r2"], verbose=0)


def test_a_metric_function_of_ones_own_is_left_to_the_step():
    def mine(p, y):
        return (p.argmax(-1) == y).mean()

    fit(_classifier(), _classes(), loss="cross_entropy", metrics=[mine], verbose=0)


def test_a_loss_error_is_traced_again_on_the_users_number_of_examples():
    import jax

    from nnjax.train.label_checks import check_loss_accepts

    out = jax.ShapeDtypeStruct((1, 3), np.float32)  # one example's output
    ids = np.zeros(4, np.float32)  # class ids as floats: an error of the loss
    with pytest.raises(ValueError, match=r"^`data`: the loss cannot compare model outputs of "
                       r"shape \(10, 3\) float32 with labels \(10,\) float32: cross_entropy: "
                       r"`labels` of shape \(10,\)"):  # fmt: skip
        check_loss_accepts("cross_entropy", out, ids, examples=10)
    with pytest.raises(ValueError, match=r"shape \(4, 3\) float32 with labels \(4,\) float32:"):
        check_loss_accepts("cross_entropy", out, ids)  # the batch's rows by default

    def one_row_only(pred, y):  # fails on one example, not on several: its shapes, so named
        return (pred[:, 0] - y).mean() if pred.shape[0] > 1 else (pred[0] + pred[0, :2]).mean()

    with pytest.raises(ValueError, match=r"\(1, 3\) float32 with labels \(1,\) float32 of one "
                       r"example \(a loss of your own"):  # fmt: skip
        check_loss_accepts(one_row_only, out, ids)
