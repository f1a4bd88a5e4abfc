"""Sweep audit (fast checks): spaces, errors before compiling, best-member selection."""

import math
from types import SimpleNamespace

import numpy as np
import optax
import pytest

from nnjax.nn import MLP
from nnjax.train._sweep_groups import SweepHistory, diverged_epochs, hyperparam_arrays
from nnjax.train.sweep import (
    Choice,
    Integer,
    LogUniform,
    Uniform,
    grid,
    random_search,
    sweep,
)
from nnjax.train.sweep_callbacks import EndWhenInactive, SweepProgress
from nnjax.train.sweep_result import SweepResult
from nnjax.train.sweep_step import SweepState, init_opt_states, make_sweep_logs


def test_log_uniform_is_log_distributed():
    """log10 of the draws is uniform on [-4, -1]: Kolmogorov-Smirnov and per decade."""
    space = LogUniform(1e-4, 1e-1)
    rng = np.random.default_rng(0)
    draws = np.array([space.sample(rng) for _ in range(20_000)])
    assert draws.min() >= 1e-4 and draws.max() <= 1e-1
    u = np.sort((np.log10(draws) + 4.0) / 3.0)  # uniform on [0, 1] if log-uniform
    cdf = np.arange(1, len(u) + 1) / len(u)
    ks = max(np.max(cdf - u), np.max(u - (cdf - 1 / len(u))))
    assert ks < 1.36 / math.sqrt(len(u))  # the 5% critical value
    per_decade = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1])[0] / len(draws)
    np.testing.assert_allclose(per_decade, [1 / 3] * 3, atol=0.015)
    # a uniform draw would put ~90% in the top decade
    flat = np.array([Uniform(1e-4, 1e-1).sample(rng) for _ in range(2000)])
    assert np.mean(flat > 1e-2) > 0.85


class _Edge:
    """A generator stub whose uniform draw is the upper bound itself."""

    def uniform(self, low, high):
        return high


def test_log_uniform_never_rounds_past_its_bounds():
    # math.exp(math.log(1e-2)) == 0.010000000000000004
    assert LogUniform(1e-4, 1e-2).sample(_Edge()) <= 1e-2
    assert LogUniform(0.3, 0.3).sample(np.random.default_rng(0)) == 0.3


def test_random_search_is_reproducible_by_seed():
    space = {"learning_rate": LogUniform(1e-4, 1e-1), "width": Choice([4, 8]), "d": Integer(1, 3)}
    a, b = random_search(50, space, seed=7), random_search(50, space, seed=7)
    assert a == b and a != random_search(50, space, seed=8)
    assert a["seeds"] == [7] * 50


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Uniform("a", 1.0), TypeError, r"Uniform: bounds must be numbers.*low='a'"),
        (lambda: LogUniform(None, 1.0), TypeError, r"LogUniform.*low=None"),
        (lambda: Integer(True, 3), TypeError, r"Integer: bounds must be ints, got True"),
        (lambda: LogUniform(-1e-3, 1.0), ValueError, r"> 0.*low=-0.001"),
        (lambda: Uniform(2.0, 1.0), ValueError, r"low <= high.*low=2.0, high=1.0"),
        (lambda: random_search(2, {"width": []}), ValueError, r"space\['width'\] is an empty"),
        (lambda: random_search(2, {"w": (4,)}, seed=-1), ValueError, r"`seed`.*got -1"),
        (lambda: random_search(2, {"w": (4,)}, seed=1.5), TypeError, r"`seed`.*got 1.5"),
        (lambda: random_search(2, [("w", 4)]), TypeError, r"`space` must be a dict.*list"),
        (lambda: grid(width=[]), ValueError, r"'width' has no values"),
    ],
)
def test_bad_spaces_name_what_was_passed(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "members, match",
    [
        (grid(batch_size=[8, 16]), r"'batch_size' is taken neither.*shared by every member"),
        (grid(optimizer=["adam", "sgd"]), r"'optimizer' is taken neither"),
        (grid(learning_rate=["fast"]), r"'learning_rate' must be a number"),
        (grid(learning_rate=[-0.1]), r"learning_rate\[0\]"),
    ],
)
def test_bad_members_are_refused_before_any_model_is_built(members, match):
    built = []

    def model_fn(rngs):
        built.append(1)
        return MLP(2, (4,), 1, rngs=rngs)

    x = np.ones((8, 2), np.float32)
    with pytest.raises((ValueError, TypeError), match=match):
        sweep(model_fn, (x, x[:, :1]), loss="mse", optimizer=optax.sgd, members=members)
    assert not built


def test_best_index_ties_nan_and_modes():
    history = {"loss": np.array([[0.5, 0.2], [0.4, 0.2], [0.1, np.nan]])}
    r = SweepResult([], np.arange(3), {}, history)
    assert r.best_index() == 0  # a tie: the lowest member index; NaN never wins
    assert r.best_index(mode="max") == 0
    r = SweepResult([], np.arange(3), {}, {"val_accuracy": np.array([[0.5], [0.9], [0.9]])})
    assert r.best_index("val_accuracy") == 1  # "auto": higher is better for accuracy


def test_a_diverged_member_is_never_the_best():
    history = {"loss": np.array([[0.5, 0.4], [0.1, np.nan]])}
    # member 1 diverged in epoch 1 but holds its (restored) best epoch 0, a finite 0.1
    r = SweepResult(
        [], np.arange(2), {}, history, weights_epoch=np.array([1, 0]),
        diverged_epoch=np.array([-1, 1]),
    )  # fmt: skip
    assert r.best_index() == 0 and r.diverged_members() == [1]


def test_no_best_when_every_member_is_nan():
    r = SweepResult([], np.arange(2), {}, {"loss": np.full((2, 3), np.nan)})
    with pytest.raises(ValueError, match=r"no member of the 2 has a finite 'loss'"):
        r.best_index()
    with pytest.raises(ValueError, match="no member"):
        r.best()


def test_rows_name_the_diverged_members():
    r = SweepResult(
        [], np.array([0, 1]), {"learning_rate": np.array([0.1, 9.0])},
        {"loss": np.array([[0.5, 0.4], [np.nan, np.nan]])}, diverged_epoch=np.array([-1, 0]),
    )  # fmt: skip
    rows = r.rows()
    assert [row["diverged_epoch"] for row in rows] == [-1, 0]
    assert rows[1]["best_epoch"] == -1 and math.isnan(rows[1]["best_loss"])
    assert r.table().splitlines()[0].split()[-1] == "diverged_epoch"


def test_diverged_epochs_ignore_members_that_stopped():
    h = SweepHistory()
    h.append(0, {"loss": np.array([1.0, 1.0, 1.0])})
    h.append(1, {"loss": np.array([0.5, np.inf, np.nan])})  # member 2 stopped after epoch 0
    got = diverged_epochs(SimpleNamespace(history=h), np.array([-1, -1, 0]))
    assert got.tolist() == [-1, 1, -1]


def test_numpy_scalar_hyperparameters_are_numeric():
    got = hyperparam_arrays({"lr": [np.float32(0.5), np.float64(1.0), 2]}, ["lr"])
    assert got["lr"].dtype == np.float64
    np.testing.assert_allclose(got["lr"], [0.5, 1.0, 2.0])
    assert hyperparam_arrays({"on": [True, False]}, ["on"])["on"].dtype == object


def _with_loop(cb, active):
    stops = []
    loop = SimpleNamespace(state=SimpleNamespace(active=np.asarray(active, np.float32)))
    loop.request_stop = lambda: stops.append(1)
    cb.set_loop(loop)
    return stops


def test_progress_reports_the_highest_auc_and_f1(capsys):
    cb = SweepProgress(0, 1, 3)
    _with_loop(cb, [1, 1])
    logs = {"val_auc": np.array([0.6, 0.9]), "f1": np.array([0.7, 0.2]),
            "val_loss": np.array([0.3, 0.2])}  # fmt: skip
    cb.on_epoch_end(0, logs)
    line = capsys.readouterr().out
    assert "val_auc: 0.9000" in line and "f1: 0.7000" in line and "val_loss: 0.2000" in line


def test_training_ends_once_no_member_is_active():
    cb = EndWhenInactive()
    stops = _with_loop(cb, [1, 0])
    cb.on_epoch_end(0)
    assert stops == []
    stops = _with_loop(cb, [0, 0])
    cb.on_epoch_end(0)
    assert stops == [1]


def test_learning_rate_is_logged_as_fit_logs_it():
    params = {"w": np.ones((2, 3), np.float32)}
    opt_state = init_opt_states(optax.sgd, params, {"learning_rate": [0.03, 0.1]})
    state = SweepState(params, opt_state, {}, np.ones(2, np.float32))
    out = {"loss": np.array([[1.0], [2.0]]), "count": np.ones((2, 1)), "logs": {}, "metrics": {}}
    logs = make_sweep_logs((), None)(state, [out], 0)
    assert logs["learning_rate"].tolist() == [0.03, 0.1]  # not 0.029999999329447746
    assert logs["loss"].tolist() == [1.0, 2.0]
