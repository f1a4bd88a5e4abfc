"""Every group of a sweep is checked before the first trains (nnjax.train.sweep_preflight)."""

import importlib

import numpy as np
import pytest

from nnjax.errors import ShapeError
from nnjax.nn import MLP
from nnjax.train.sweep import sweep

sweep_module = importlib.import_module("nnjax.train.sweep")  # `nnjax.train.sweep` is the function


@pytest.fixture
def data():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    return x, (np.arange(16) % 3).astype(np.int32)


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a group trained before every group was checked")

    monkeypatch.setattr(sweep_module, "_run_group", refuse)


def test_a_model_fn_failing_for_a_later_group_fails_before_training(data):
    """It failed only when that group started, after the earlier groups had trained."""

    def model_fn(rngs, width):
        if width == 8:
            raise ValueError("no width 8 here")
        return MLP(4, (width,), 3, rngs=rngs)

    with pytest.raises(ValueError, match="no width 8 here") as info:
        sweep(model_fn, data, loss="cross_entropy", hyperparams={"width": [4, 4, 8]})
    notes = "\n".join(info.value.__notes__)
    assert "building the member of model_fn arguments {'width': 8}" in notes


def test_a_later_group_that_cannot_take_the_data_fails_before_training(data):
    def model_fn(rngs, features):
        return MLP(features, (8,), 3, rngs=rngs)

    with pytest.raises(ShapeError, match="the model cannot take inputs of per-example"):
        sweep(model_fn, data, loss="cross_entropy", hyperparams={"features": [4, 5]})


def test_a_later_group_whose_outputs_the_labels_do_not_fit_fails_before_training(data):
    x, y = data
    y = y + 2  # classes 2..4: a member with 3 outputs cannot take them

    def model_fn(rngs, classes):
        return MLP(4, (8,), classes, rngs=rngs)

    with pytest.raises(ValueError, match=r"is out of range: the model has 3 outputs"):
        sweep(model_fn, (x, y), loss="cross_entropy", hyperparams={"classes": [5, 3]})


def test_groups_that_fit_pass_the_checks_and_reach_training(data):
    def model_fn(rngs, width, depth):
        return MLP(4, (width,) * depth, 3, rngs=rngs)

    members = {"width": [4, 8, 8], "depth": [1, 1, 2]}
    with pytest.raises(AssertionError, match="trained before every group was checked"):
        sweep(model_fn, data, loss="cross_entropy", hyperparams=members)
