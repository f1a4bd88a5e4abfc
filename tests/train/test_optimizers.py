"""``nnjax.train.optimizers``: the optimizer state built in one compiled call."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import fit, optimizers
from nnjax.train.step import split_model


def _params():
    return split_model(MLP(3, (5, 4), 2, rngs=nnx.Rngs(0)))[1]


def _counting(tx: optax.GradientTransformation) -> tuple[optax.GradientTransformation, list]:
    """``tx`` whose ``init`` records each time it runs (traced or eagerly)."""
    calls: list = []

    def init(params):
        calls.append(1)
        return tx.init(params)

    return optax.GradientTransformation(init, tx.update), calls


@pytest.mark.parametrize(
    "tx, lr",
    [
        (optimizers.get_optimizer("adam"), 0.01),
        (optimizers.get_optimizer(optax.lion), 3e-4),
        (optimizers.accumulate(optimizers.get_optimizer("sgd"), 3), 0.5),
        (optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3)), None),
    ],
    ids=["adam", "lion-factory", "sgd-accumulated", "user-chain"],
)
def test_init_state_equals_optax_eager_init(tx, lr):
    params = _params()
    got = optimizers.init_state(tx, params, learning_rate=lr)
    want = tx.init(params)
    if lr is not None:
        want = optimizers.set_hyperparameter(want, "learning_rate", lr)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if lr is not None:
        assert float(optimizers.get_hyperparameter(got, "learning_rate")) == np.float32(lr)


def test_init_state_compiles_once_per_optimizer_whatever_the_learning_rate():
    tx, calls = _counting(optimizers.get_optimizer("adam"))
    params = _params()
    rates = []
    for lr in (0.1, 0.02, 0.003):
        state = optimizers.init_state(tx, params, learning_rate=lr)
        rates.append(float(optimizers.get_hyperparameter(state, "learning_rate")))
    assert len(calls) == 1  # traced once; eagerly it would run 3 times
    np.testing.assert_allclose(rates, [0.1, 0.02, 0.003], rtol=1e-6, atol=1e-9)


def test_an_init_that_reads_values_runs_eagerly():
    def init(params):  # a Python branch on a value: cannot be traced
        scale = 2.0 if float(sum(jnp.sum(p) for p in jax.tree.leaves(params))) > -1e9 else 1.0
        return {"scale": jnp.asarray(scale)}

    tx = optax.GradientTransformation(init, lambda u, s, p=None: (u, s))
    state = optimizers.init_state(tx, _params())
    assert float(state["scale"]) == 2.0


def test_a_bad_init_still_raises_its_own_error():
    def init(params):
        raise RuntimeError("broken optimizer")

    tx = optax.GradientTransformation(init, lambda u, s, p=None: (u, s))
    with pytest.raises(RuntimeError, match="broken optimizer"):
        optimizers.init_state(tx, _params())


def test_fit_builds_the_optimizer_state_once_over_repeated_calls():
    tx, calls = _counting(optax.adam(1e-2))
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    for _ in range(5):
        fit(model, (x, y), loss="cross_entropy", optimizer=tx, epochs=1, verbose=0)
    assert len(calls) <= 2  # traced by the compiled init and the setup check, not per call


def test_the_gradient_transformation_class_is_not_taken_for_a_factory():
    with pytest.raises(
        TypeError, match=r"got the class .*GradientTransformation, not an optimizer"
    ):
        optimizers.get_optimizer(optax.GradientTransformation)
    optimizers.check_not_class(optax.adam)  # a factory passes


def test_a_frozen_injected_optimizer_keeps_its_learning_rate_reachable():
    """``train.freeze`` wraps the optimizer in ``optax.multi_transform``: its rate was not
    found there (not logged; the learning-rate callbacks said nothing was injected)."""
    from nnjax.train import LearningRateScheduler, freeze

    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    inner = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    frozen_before = np.asarray(model.layers[0].kernel.get_value())
    halving = LearningRateScheduler(lambda e: 0.1 / 2**e)
    history = fit(model, (x, y), loss="cross_entropy", optimizer=freeze(inner, "layers/0"),
                  epochs=3, verbose=0, callbacks=[halving])  # fmt: skip
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.05, 0.025], rtol=1e-6,
                               atol=1e-9)  # fmt: skip
    np.testing.assert_array_equal(model.layers[0].kernel.get_value(), frozen_before)
    state = optimizers.init_state(freeze(inner, "layers/0"), nnx.state(model, nnx.Param))
    moved = optimizers.set_hyperparameter(state, "learning_rate", 0.5)
    assert float(optimizers.get_hyperparameter(moved, "learning_rate")) == 0.5
    assert float(optimizers.get_hyperparameter(state, "learning_rate")) == pytest.approx(0.1)


def test_two_injected_optimizers_under_labels_are_ambiguous():
    two = optax.multi_transform(
        {"a": optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
         "b": optax.inject_hyperparams(optax.sgd)(learning_rate=0.2)},
        {"u": "a", "v": "b"},
    )  # fmt: skip
    state = two.init({"u": jnp.ones(1), "v": jnp.ones(1)})
    assert optimizers.hyperparameters(state) == {}  # which one a callback would move: unclear
