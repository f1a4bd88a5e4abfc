"""``nnjax._metrics_binary``: the loss's binary threshold, carried by a ``Thresholded`` spec."""

import pickle

import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import losses, metrics
from nnjax._metrics_binary import (
    THRESHOLDED,
    Thresholded,
    binary_threshold,
    unthresholded,
    with_threshold,
)
from nnjax._output_losses import OutputMetric


def test_specs_for_a_loss_of_values_is_a_readable_spec_of_the_name_given():
    """``specs_for("mse", ["accuracy"])`` says what it holds: the name and its threshold."""
    (spec,) = metrics.specs_for("mse", ["accuracy"])
    assert isinstance(spec, Thresholded) and not isinstance(spec, str)
    assert (spec.spec, spec.threshold) == ("accuracy", 0.5)
    assert spec == Thresholded("accuracy", 0.5)
    assert repr(spec) == "Thresholded(spec='accuracy', threshold=0.5)"
    assert metrics.resolve(spec).name == "accuracy"  # logged under the name given


def test_names_of_a_logit_loss_and_other_metrics_stay_as_given():
    assert metrics.specs_for("binary_cross_entropy", ["accuracy"]) == ("accuracy",)
    assert metrics.specs_for("hinge", ["f1"]) == ("f1",)
    assert metrics.specs_for("mse", ["mae", "auc", "r2"]) == ("mae", "auc", "r2")
    assert with_threshold(lambda p, y: jnp.mean(p - y), "accuracy") == "accuracy"
    mine = Thresholded("accuracy", 0.25)  # a threshold of one's own is kept
    assert metrics.specs_for("mse", [mine]) == (mine,)
    assert metrics.specs_for("mse", mine) == (mine,)  # one spec, as a bare name


@pytest.mark.parametrize("name", sorted(THRESHOLDED))
def test_every_thresholded_name_resolves_under_its_own_name(name):
    spec = with_threshold("mse", name)
    assert spec == Thresholded(name, 0.5)
    assert metrics.resolve(spec).name == metrics.resolve(name).name


def test_equal_specs_are_one_compiled_step_and_other_thresholds_another():
    a, b = metrics.specs_for("mse", ["accuracy"]), metrics.specs_for("huber", "accuracy")
    assert a == b and hash(a) == hash(b)
    assert a != ("accuracy",) and a != metrics.specs_for("mse", [Thresholded("accuracy", 0.25)])
    assert len({a, b, ("accuracy",)}) == 2
    assert Thresholded("accuracy", 1) == Thresholded("accuracy", 1.0)  # kept as a float
    assert isinstance(Thresholded("accuracy", np.float32(0.5)).threshold, float)


def test_a_spec_is_frozen_and_pickles():
    spec = Thresholded("f1_macro", 0.5)
    assert pickle.loads(pickle.dumps(spec)) == spec
    wrapped = OutputMetric("reg", spec)
    assert pickle.loads(pickle.dumps(wrapped)) == wrapped
    with pytest.raises(AttributeError):
        spec.threshold = 0.0  # type: ignore[misc]


def test_the_threshold_decides_class_1():
    pred, y, mask = jnp.array([0.3, 0.7, 0.1]), jnp.array([1, 1, 0]), jnp.ones(3)
    for threshold, want in ((0.0, 2 / 3), (0.5, 2 / 3), (0.25, 1.0), (0.8, 1 / 3)):
        m = metrics.resolve(Thresholded("binary_accuracy", threshold))
        assert m.name == "binary_accuracy"
        np.testing.assert_allclose(m.result(m.stats(pred, y, mask)), want, rtol=1e-6, atol=1e-9)


def test_each_output_follows_its_loss():
    loss = losses.get({"reg": "mse", "cls": "binary_cross_entropy"})
    specs = metrics.specs_for(loss, {"reg": "accuracy", "cls": "accuracy"})
    assert specs[2:] == (
        OutputMetric("reg", Thresholded("accuracy", 0.5)),
        OutputMetric("cls", "accuracy"),
    )
    assert [metrics.resolve(s).name for s in specs] == [
        "reg_loss", "cls_loss", "reg_accuracy", "cls_accuracy"
    ]  # fmt: skip


def test_a_name_without_a_threshold_or_a_bad_threshold_is_refused():
    with pytest.raises(ValueError, match=r"the metric 'mae' takes no threshold; .*accuracy"):
        Thresholded("mae", 0.5)
    with pytest.raises(ValueError, match="takes no threshold"):
        Thresholded(metrics.accuracy, 0.5)  # type: ignore[arg-type]
    for bad in (float("nan"), float("inf"), "0.5", None, True):
        with pytest.raises(ValueError, match="`threshold` must be a finite number"):
            Thresholded("accuracy", bad)  # type: ignore[arg-type]


def test_unthresholded_gives_the_name_to_the_checks_that_read_it():
    assert unthresholded(Thresholded("Accuracy", 0.5)) == "Accuracy"
    assert unthresholded("mae") == "mae"
    assert unthresholded(metrics.accuracy) is metrics.accuracy


def test_binary_threshold_of_each_kind_of_loss():
    assert binary_threshold("mse") == binary_threshold(losses.mae) == 0.5
    assert binary_threshold("binary_cross_entropy") == binary_threshold(losses.hinge) == 0.0
    assert binary_threshold("no_such_loss") == binary_threshold(None) == 0.0
