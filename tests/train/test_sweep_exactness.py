"""Sweep audit: every member ends where ``fit`` of it alone ends; divergence per member.

Tolerance: a sweep vmaps ``fit``'s step, so each member's matrix products run as one
batched product whose float32 sums XLA may tile in another order; parameters then
differ in the last bits, and more so at large learning rates (measured: at most about
2e-5 after 5 epochs of AdamW at 0.3, 4e-6 at 0.03; history within 1e-5).
"""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train.callbacks import EarlyStopping
from nnjax.train.checkpoint import ModelCheckpoint
from nnjax.train.engine import NonFiniteLossError
from nnjax.train.loop import fit
from nnjax.train.sweep import grid, sweep
from tests.train._data import crash_at, three_classes

N, BATCH = 37, 8  # a padded, masked last batch


@pytest.fixture(scope="module")
def data():
    return three_classes(N)


def dropout_mlp(rngs):
    return MLP(4, (8,), 3, dropout=0.2, rngs=rngs)


def params_of(model):
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def max_diff(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda u, v: float(np.max(np.abs(u - v))), a, b)))


@pytest.mark.slow  # a sweep of 8 members and 4 fits: ~40 s on a loaded 2-core machine
def test_members_end_where_fit_ends(data):
    """Learning rate, weight decay, seeds, dropout, class weights, validation, a padded
    last batch and per-member early stopping: members stop at different epochs."""
    x, y = data
    members = grid(seeds=[0, 3], learning_rate=[3e-2, 3e-1], weight_decay=[0.0, 0.5])
    stop = dict(monitor="val_loss", patience=1, min_delta=0.01, restore_best_weights=True)
    common = dict(
        loss="cross_entropy", epochs=5, batch_size=BATCH, validation_data=(x[:16], y[:16]),
        class_weight={0: 1.0, 1: 2.0, 2: 0.5},
    )  # fmt: skip
    result = sweep(
        dropout_mlp, data, optimizer=optax.adamw, members=members,
        callbacks=[EarlyStopping(**stop)], **common,
    )  # fmt: skip
    ran_lengths = set()
    for i in (0, 3, 5, 6):  # both seeds, both rates, both decays
        seed = members["seeds"][i]
        lr, wd = (members["hyperparams"][n][i] for n in ("learning_rate", "weight_decay"))
        model, cb = dropout_mlp(nnx.Rngs(seed)), EarlyStopping(**stop)
        history = fit(
            model, data, optimizer=optax.adamw(lr, weight_decay=wd), seed=seed,
            callbacks=[cb], verbose=0, **common,
        )  # fmt: skip
        assert max_diff(params_of(result.member(i)), params_of(model)) < 5e-5, i
        ran = len(history.epoch)
        ran_lengths.add(ran)
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(
                result.history[name][i, :ran], history.history[name], atol=2e-5, err_msg=name
            )
        assert np.all(np.isnan(result.history["val_loss"][i, ran:]))  # frozen after its stop
        assert result.stopped_epoch[i] == (-1 if cb.stopped_epoch is None else cb.stopped_epoch)
        assert result.weights_epoch[i] == cb.best_epoch
    assert len(ran_lengths) > 1  # some stopped while others went on
    assert result.diverged_members() == []


def regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    return x, 3 * x[:, :1]


def small_mlp(rngs):
    return MLP(4, (8,), 1, rngs=rngs)


@pytest.mark.slow  # a sweep and two fits: ~15 s on a loaded 2-core machine
def test_a_diverging_member_is_frozen_and_named_while_the_others_match_fit():
    x, y = regression()
    common = dict(loss="mse", epochs=3, batch_size=8)
    result = sweep(
        small_mlp, (x, y), optimizer=optax.sgd, members=grid(learning_rate=[1e-2, 1e6]),
        **common,
    )  # fmt: skip
    model = small_mlp(nnx.Rngs(0))
    history = fit(model, (x, y), optimizer=optax.sgd(1e-2), seed=0, verbose=0, **common)
    assert max_diff(params_of(result.member(0)), params_of(model)) < 1e-5
    np.testing.assert_allclose(
        result.history["loss"][0], history.history["loss"], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(NonFiniteLossError):  # where fit of the member alone raises
        fit(small_mlp(nnx.Rngs(0)), (x, y), optimizer=optax.sgd(1e6), verbose=0, **common)
    assert result.diverged_epoch.tolist() == [-1, 0]
    assert result.diverged_members() == [1] and result.weights_epoch[1] == -1
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(params_of(result.member(1))))
    assert np.isnan(result.history["loss"][1]).all()
    assert result.best_index() == 0
    assert result.rows()[1]["diverged_epoch"] == 0


@pytest.mark.slow  # a sweep: ~8 s on a loaded 2-core machine
def test_a_group_whose_members_all_diverged_ends():
    x, y = regression()
    result = sweep(
        small_mlp, (x, y), loss="mse", optimizer=optax.sgd, epochs=4, batch_size=8,
        members=grid(learning_rate=[1e6, 1e7]),
    )  # fmt: skip
    assert result.history["loss"].shape == (2, 1)  # not 4 epochs of frozen members
    assert result.diverged_epoch.tolist() == [0, 0]
    with pytest.raises(ValueError, match="no member of the 2 has a finite 'loss'"):
        result.best()


def nan_logging_loss(model, batch):
    loss = ((model(batch.x) - batch.y) ** 2).mean()
    return loss, {"score": loss * np.float32("nan")}


@pytest.mark.slow  # a sweep and a fit: ~15 s on a loaded 2-core machine
def test_a_member_that_never_improves_keeps_its_weights_as_with_fit():
    """A monitored value that is never finite never improves: fit keeps the last weights
    (there is no best epoch to restore), so must the member."""
    x, y = regression()
    stop = dict(monitor="score", mode="min", patience=1, restore_best_weights=True)
    common = dict(loss_fn=nan_logging_loss, epochs=3, batch_size=8, metrics=())
    result = sweep(
        small_mlp, (x, y), optimizer=optax.sgd, members=grid(learning_rate=[1e-2]),
        callbacks=[EarlyStopping(**stop)], **common,
    )  # fmt: skip
    model, cb = small_mlp(nnx.Rngs(0)), EarlyStopping(**stop)
    fit(model, (x, y), optimizer=optax.sgd(1e-2), callbacks=[cb], verbose=0, **common)
    assert cb.stopped_epoch == 0 and cb.best_epoch is None
    assert result.stopped_epoch.tolist() == [0] and result.weights_epoch.tolist() == [0]
    assert max_diff(params_of(result.member(0)), params_of(model)) < 1e-5
    assert max_diff(params_of(result.member(0)), params_of(small_mlp(nnx.Rngs(0)))) > 1e-4


@pytest.mark.slow  # three sweeps with checkpoints: ~25 s on a loaded 2-core machine
def test_a_resumed_sweep_keeps_its_diverged_member(tmp_path):
    x, y = regression()

    def run(folder, extra=(), resume_from=None):
        return sweep(
            small_mlp, (x, y), loss="mse", optimizer=optax.sgd, epochs=3, batch_size=8,
            members=grid(learning_rate=[1e-2, 1e6]), resume_from=resume_from,
            callbacks=[ModelCheckpoint(folder), *extra],
        )  # fmt: skip

    whole = run(tmp_path / "whole")
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path / "cut", extra=[crash_at(1)])
    resumed = run(tmp_path / "cut", resume_from=tmp_path / "cut")
    assert whole.diverged_epoch.tolist() == resumed.diverged_epoch.tolist() == [-1, 0]
    assert max_diff(whole.params, resumed.params) == 0
    np.testing.assert_array_equal(whole.history["loss"], resumed.history["loss"])
