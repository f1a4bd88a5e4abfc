"""Tests for nnjax.train.sweep_space: grid, random search, spaces, routing."""

import functools
import math

import numpy as np
import optax
import pytest

from nnjax.train.sweep_space import (
    Choice,
    Integer,
    LogUniform,
    Uniform,
    check_numeric,
    grid,
    random_search,
    route,
    zip_members,
)


def test_grid_is_the_cartesian_product():
    g = grid(seeds=[0, 1], learning_rate=[0.1, 0.2, 0.3], width=[(4,), (8, 8)])
    assert g["seeds"] == [0] * 6 + [1] * 6
    assert g["hyperparams"]["learning_rate"] == ([0.1] * 2 + [0.2] * 2 + [0.3] * 2) * 2
    assert g["hyperparams"]["width"] == [(4,), (8, 8)] * 6
    with pytest.raises(ValueError, match="'width' has no values"):
        grid(width=[])


def test_random_search_draws_from_each_space():
    space = {
        "learning_rate": LogUniform(1e-4, 1e-1),
        "dropout": Uniform(0.0, 0.5),
        "layers": Integer(1, 3),
        "activation": Choice(["relu", "tanh"]),
        "width": [32, 64],  # a list is a choice
        "b1": 0.9,  # fixed
    }
    m = random_search(400, space, seed=3)
    hp = m["hyperparams"]
    assert m["seeds"] == [3] * 400
    lr = np.array(hp["learning_rate"])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # log-uniform: each decade gets about a third of the draws
    decades = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1])[0]
    assert np.all(np.abs(decades - 400 / 3) < 45), decades
    assert 0 <= min(hp["dropout"]) and max(hp["dropout"]) <= 0.5
    assert set(hp["layers"]) == {1, 2, 3} and all(isinstance(v, int) for v in hp["layers"])
    assert set(hp["activation"]) == {"relu", "tanh"} and set(hp["width"]) == {32, 64}
    assert hp["b1"] == [0.9] * 400
    assert random_search(400, space, seed=3) == m  # reproducible
    assert random_search(400, space, seed=4) != m
    assert random_search(3, {"lr": Uniform(0, 1)}, seeds=[5, 6, 7])["seeds"] == [5, 6, 7]


def test_bad_spaces_are_refused():
    with pytest.raises(ValueError, match="`space` is empty"):
        random_search(3, {})
    with pytest.raises(ValueError, match=r"bounds must be > 0.*low=0"):
        LogUniform(0, 1e-2)
    with pytest.raises(ValueError, match="low=-1"):
        LogUniform(-1, 1)
    with pytest.raises(ValueError, match="low <= high"):
        Uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        Uniform(0.0, math.inf)
    with pytest.raises(TypeError, match="ints"):
        Integer(1, 2.5)
    with pytest.raises(ValueError, match="at least one"):
        Choice([])
    with pytest.raises(ValueError, match="`n` must be an int >= 1"):
        random_search(0, {"lr": Uniform(0, 1)})
    with pytest.raises(ValueError, match="length 2 or 1"):
        random_search(2, {"lr": Uniform(0, 1)}, seeds=[1, 2, 3])


def test_zip_members_broadcasts_and_checks_lengths():
    assert zip_members([0, 1], {"lr": [0.1]}) == ([0, 1], {"lr": [0.1, 0.1]})
    assert zip_members(0, {"lr": np.array([0.1, 0.2])}) == ([0, 0], {"lr": [0.1, 0.2]})
    with pytest.raises(ValueError, match="same length"):
        zip_members([0, 1], {"lr": [0.1, 0.2, 0.3]})
    with pytest.raises(TypeError, match=r"`seeds\[1\]` must be an integer, got 0.5"):
        zip_members([0, 0.5], {})
    with pytest.raises(ValueError, match=r"`seeds\[0\]` must be >= 0, got -1"):
        zip_members([-1], {})
    with pytest.raises(TypeError, match="`hyperparams` must be a dict"):
        zip_members([0], [{"width": 4}])


def test_route_sends_names_to_the_optimizer_or_the_model():
    def model_fn(rngs, width, *, dropout=0.0):
        return None

    assert route(["learning_rate", "width", "dropout", "b1"], optax.adam, model_fn) == (
        ("b1", "learning_rate"),
        ("dropout", "width"),
    )
    partial = functools.partial(optax.adamw, weight_decay=1e-4)
    assert route(["weight_decay"], partial, model_fn) == (("weight_decay",), ())
    with pytest.raises(ValueError, match=r"'depth' is taken neither.*after rngs it takes"):
        route(["depth"], optax.adam, model_fn)
    with pytest.raises(ValueError, match="both"):
        route(["learning_rate"], optax.adam, lambda rngs, learning_rate: None)
    assert route(["anything"], optax.adam, lambda rngs, **kw: None) == ((), ("anything",))
    check_numeric({"learning_rate": [0.1, 1]}, ["learning_rate"])
    with pytest.raises(ValueError, match=r"`learning_rate\[1\]` must be a finite number > 0"):
        check_numeric({"learning_rate": [0.1, -0.1]}, ["learning_rate"])
    with pytest.raises(
        ValueError, match=r"model_fn is called as model_fn\(rngs, \*\*hyperparams\)"
    ):
        route(["width"], optax.adam, lambda width: None)
    with pytest.raises(TypeError, match="'nesterov' must be a number"):
        check_numeric({"nesterov": [True]}, ["nesterov"])
