"""``ReduceLROnPlateau`` and ``LearningRateScheduler`` in a sweep act per member.

Each member's rates must be those ``fit`` of it alone sets. A scripted per-member
metric (written by a callback listed first) makes members stall at different epochs.
Before, both callbacks failed in a sweep ("only 0-dimensional arrays can be converted
to Python scalars"): the group's rates are an ``(M,)`` array.
"""

import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.nn import MLP
from nnjax.train.optimizers import get_optimizer, init_state, set_hyperparameter
from tests.train._data import three_classes

RATES = [0.1, 0.2, 0.05]
SCRIPT = np.array(  # "score" per epoch (rows) and member (columns): stalls differ
    [[1.0, 1.0, 1.0], [0.5, 1.0, 1.0], [0.5, 0.9, 1.0], [0.4, 0.9, 1.0], [0.4, 0.9, 0.2]]
)
KW = dict(loss="cross_entropy", epochs=len(SCRIPT), batch_size=16, verbose=0)


class Score(T.Callback):
    """Logs ``SCRIPT[epoch]``: all members' values in a sweep, one member's in ``fit``."""

    writes_logs = ("score",)

    def __init__(self, member=None):
        self.member = member

    def on_epoch_end(self, epoch, logs=None):
        row = SCRIPT[epoch]
        logs["score"] = row if self.member is None else float(row[self.member])


def mlp(rngs):
    return MLP(4, (8,), 3, rngs=rngs)


def _sweep_rates(callback):
    members = {"seeds": [0] * len(RATES), "hyperparams": {"learning_rate": RATES}}
    result = T.sweep(mlp, three_classes(32), members=members, callbacks=[Score(), callback], **KW)
    return np.asarray(result.history["learning_rate"])


def _fit_rates(i, callback):
    history = T.fit(
        mlp(nnx.Rngs(0)), three_classes(32), learning_rate=RATES[i],
        callbacks=[Score(i), callback], **KW,
    )  # fmt: skip
    return history.history["learning_rate"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: T.ReduceLROnPlateau("score", mode="min", factor=0.5, patience=1, min_lr=0.04),
        lambda: T.ReduceLROnPlateau("score", mode="min", factor=0.5, patience=2, cooldown=1),
        lambda: T.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch % 2 else lr),
        lambda: T.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1)),
    ],
    ids=["plateau", "plateau-cooldown", "scheduler", "scheduler-one-argument"],
)
def test_each_member_gets_the_rates_fit_gives_it(make):
    swept = _sweep_rates(make())
    assert swept.shape == (len(RATES), len(SCRIPT))
    for i in range(len(RATES)):
        np.testing.assert_allclose(swept[i], _fit_rates(i, make()), rtol=1e-6, atol=1e-9)
    if isinstance(make(), T.ReduceLROnPlateau):
        assert len({tuple(row) for row in swept}) == len(RATES)  # members lowered apart


def test_per_member_rates_compile_nothing():
    from nnjax.train import compiled

    _sweep_rates(T.LearningRateScheduler(lambda epoch, lr: lr / 2))
    traces = compiled.TRACES.count
    swept = _sweep_rates(T.LearningRateScheduler(lambda epoch, lr: lr / 2))
    np.testing.assert_allclose(swept[:, 1], np.array(RATES) / 4, rtol=1e-6, atol=1e-9)
    assert compiled.TRACES.count == traces


def test_a_plateau_rate_is_lowered_per_member():
    swept = _sweep_rates(T.ReduceLROnPlateau("score", mode="min", factor=0.5, patience=1))
    # a stall (patience 1) halves the rate from the next epoch on: member 0 stalls at
    # epochs 2 and 4, member 1 at 1 and 3, member 2 at 1, 2 and 3 (it improves at 4)
    np.testing.assert_allclose(swept[0], [0.1, 0.1, 0.1, 0.05, 0.05])
    np.testing.assert_allclose(swept[1], [0.2, 0.2, 0.1, 0.1, 0.05])
    np.testing.assert_allclose(swept[2], [0.05, 0.05, 0.025, 0.0125, 0.00625])


def test_per_member_values_must_match_the_group():
    state = init_state(get_optimizer("sgd"), {"w": np.ones(2, np.float32)}, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"has shape \(\) in this optimizer state"):
        set_hyperparameter(state, "learning_rate", np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"learning_rate\[1\]"):
        set_hyperparameter(state, "learning_rate", np.array([0.1, -0.2]))


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
def test_a_resumed_sweep_lowers_the_rates_as_an_uninterrupted_one(tmp_path):
    from nnjax.train.checkpoint import ModelCheckpoint
    from tests.train._data import crash_at

    members = {"seeds": [0] * len(RATES), "hyperparams": {"learning_rate": RATES}}
    plateau = lambda: T.ReduceLROnPlateau("score", mode="min", factor=0.5, patience=2)

    def run(folder, extra=(), resume_from=None):
        callbacks = [Score(), plateau(), ModelCheckpoint(folder), *extra]
        return T.sweep(
            mlp, three_classes(32), members=members, callbacks=callbacks,
            resume_from=resume_from, **KW,
        )  # fmt: skip

    whole = np.asarray(run(tmp_path / "whole").history["learning_rate"])
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path / "cut", extra=[crash_at(2)])
    resumed = np.asarray(
        run(tmp_path / "cut", resume_from=tmp_path / "cut").history["learning_rate"]
    )
    np.testing.assert_allclose(resumed, whole, rtol=1e-6, atol=1e-9)
