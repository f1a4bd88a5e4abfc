"""Tests for nnjax.train.sweep: vmapped sweeps and ensembles."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import losses
from nnjax.nn import MLP
from nnjax.train import step as step_lib
from nnjax.train.data import epoch_index
from nnjax.train.loop import fit
from nnjax.train.sweep import (
    SweepResult,
    ensemble_predict,
    grid,
    member_predictions,
    sweep,
)

N, BATCH, EPOCHS = 40, 8, 2


def make_model(rngs):
    return MLP(4, (8,), 3, dropout=0.2, rngs=rngs)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 1).astype(np.int32)
    return x, y


def train_alone(seed, lr, data):
    """Reference: one model, a plain Python loop over the same pure step."""
    x, y = data
    gd, params, rest = step_lib.split_model(make_model(nnx.Rngs(seed)))
    tx = optax.adam(lr)
    step = jax.jit(step_lib.make_train_step(gd, "cross_entropy", tx, ("accuracy",)))
    opt_state, epoch_losses = tx.init(params), []
    for epoch in range(EPOCHS):
        logs = []
        for rows in epoch_index(seed, epoch, N, BATCH)[0]:  # N = 5 * BATCH: no padding
            params, opt_state, rest, out = step(params, opt_state, rest, x[rows], y[rows])
            logs.append(out["loss"])
        epoch_losses.append(np.mean(logs))
    return params, np.array(epoch_losses)


@pytest.fixture(scope="module")
def result(data):
    return sweep(
        make_model,
        data,
        loss="cross_entropy",
        optimizer=optax.adam,
        **grid(seeds=[0, 1], learning_rate=[1e-2, 3e-2]),
        epochs=EPOCHS,
        batch_size=BATCH,
        steps_per_dispatch=3,  # 5 steps per epoch: dispatches of 3 and 2
    )


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_each_member_ends_where_training_it_alone_ends(result, data):
    assert result.num_members == 4
    np.testing.assert_array_equal(result.seeds, [0, 0, 1, 1])
    np.testing.assert_allclose(result.hyperparams["learning_rate"], [1e-2, 3e-2] * 2)
    assert result.history["loss"].shape == (4, EPOCHS)
    for i, (seed, lr) in enumerate([(0, 1e-2), (0, 3e-2), (1, 1e-2), (1, 3e-2)]):
        params, epoch_losses = train_alone(seed, lr, data)
        got = jax.tree.map(lambda a, i=i: a[i], result.params)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6), got, params
        )
        np.testing.assert_allclose(result.history["loss"][i], epoch_losses, rtol=1e-5, atol=1e-5)


def test_member_matches_fit_with_the_same_seed(result, data):
    model = make_model(nnx.Rngs(1))
    fit(
        model,
        data,
        loss="cross_entropy",
        optimizer=optax.adam(3e-2),
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=1,
        verbose=0,
        devices=jax.devices()[:1],
    )
    alone = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    member = nnx.to_pure_dict(nnx.state(result.member(3), nnx.Param))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6), member, alone)


def test_no_recompilation_on_second_call(data):
    traces = []

    def counting_loss(logits, labels):
        traces.append(1)
        return losses.cross_entropy(logits, labels)

    def run():
        return sweep(
            make_model,
            data,
            loss=counting_loss,
            optimizer=optax.sgd,
            seeds=[0, 1],
            hyperparams={"learning_rate": [0.1, 0.2]},
            batch_size=BATCH,
            metrics=(),
            steps_per_dispatch=5,
        )

    run()
    n = len(traces)
    assert n > 0
    second = run()
    assert len(traces) == n
    assert np.all(np.isfinite(second.history["loss"]))


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_ensemble_predict_is_the_mean_of_member_outputs(result, data):
    x = jnp.asarray(data[0][:6])
    outs = [nnx.view(result.member(i), deterministic=True)(x) for i in range(4)]
    np.testing.assert_allclose(member_predictions(result, x), jnp.stack(outs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ensemble_predict(result, x), np.mean(outs, axis=0), rtol=1e-5, atol=1e-6
    )
    probs = np.mean([jax.nn.softmax(o) for o in outs], axis=0)
    got = ensemble_predict(result, x, activation="softmax")
    np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-6)


def test_member_is_an_independent_copy(result):
    model = result.member(0)
    model.layers[0].kernel[...] = jnp.zeros_like(model.layers[0].kernel[...])
    assert np.any(result.params["layers"][0]["kernel"][0] != 0)


def test_grid_and_broadcasting():
    g = grid(seeds=[0, 1], learning_rate=[0.1, 0.2, 0.3])
    assert g["seeds"] == [0, 0, 0, 1, 1, 1]
    assert g["hyperparams"]["learning_rate"] == [0.1, 0.2, 0.3] * 2


def test_best_ignores_diverged_members():
    history = {"loss": np.array([[1.0, 0.5], [1.0, np.nan], [1.0, 0.2]])}
    result = SweepResult(None, {}, {}, (), np.arange(3), {}, history)
    assert result.best() == 2
    assert result.best("loss", mode="max") == 0


def test_bad_arguments_are_reported(data):
    with pytest.raises(ValueError, match="same length"):
        sweep(make_model, data, loss="mse", seeds=[0, 1], hyperparams={"learning_rate": [1, 2, 3]})
    with pytest.raises(ValueError, match="unknown optimizer"):
        sweep(make_model, data, loss="mse", optimizer="nope")
    with pytest.raises(ValueError, match="factory"):
        sweep(make_model, data, loss="mse", optimizer=optax.adam(1e-3))
    widths = iter([4, 5])
    with pytest.raises(ValueError, match="architectures"):
        sweep(
            lambda rngs: MLP(4, (next(widths),), 3, rngs=rngs),
            data,
            loss="cross_entropy",
            seeds=[0, 1],
            epochs=0,
        )
