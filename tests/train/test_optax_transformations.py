"""Optax transformations under ``fit``, against a plain Optax + ``nnx.value_and_grad`` loop.

The reference trains the same model on the same unshuffled batches of 16 rows (64 rows,
so no padding) with ``tx.update`` and ``optax.apply_updates``; it shares no code with
``fit`` beyond the model. Covers transformations matched by structure after a global
their schedule reads changed, ``optax.MultiSteps`` objects, learning rates injected in
one of several parts, and the refusals (a scheduled injected rate under a rate callback,
``optax.lookahead``, an update requiring an extra argument ``fit`` does not pass).
"""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.train import compiled, optimizers
from tests.train._data import blobs, leaves, mlp

X, Y = blobs(64)
B = 16
ONE = jax.devices()[:1]


def ce(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def reference(tx, epochs, x=X, *, value=False, at_epoch=None):
    """``(model, opt_state, losses)`` of the plain loop; ``at_epoch(e, state) -> state``."""
    model = mlp()
    state = tx.init(nnx.state(model, nnx.Param))
    losses = []
    for epoch in range(epochs):
        if at_epoch is not None:
            state = at_epoch(epoch, state)
        for i in range(0, len(x), B):
            loss, grads = nnx.value_and_grad(ce)(model, x[i : i + B], Y[i : i + B])
            params = nnx.state(model, nnx.Param)
            extra = {"value": loss} if value else {}
            updates, state = tx.update(grads, state, params, **extra)
            nnx.update(model, optax.apply_updates(params, updates))
            losses.append(float(loss))
    return model, state, losses


class Grab(T.Callback):
    """Keeps the optimizer state at the end of training."""

    def on_train_end(self, logs=None):
        self.opt_state = self.loop.state.opt_state


def fitted(tx, epochs, x=X, **kwargs):
    model = mlp()
    history = T.fit(model, (x, Y), loss="cross_entropy", optimizer=tx, epochs=epochs,
                    batch_size=B, shuffle=False, verbose=0, devices=ONE, **kwargs)  # fmt: skip
    return model, history


def assert_same(a, b):
    for p, q in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


# 1. a fresh transformation equal to one whose schedule read a global that changed

base_lr = 0.1


def _global_rate(step):
    return base_lr


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_fresh_transformation_after_a_global_changed_trains_at_the_new_rate():
    global base_lr
    try:
        tx = optax.sgd(_global_rate)
        fitted(tx, 1)
        base_lr = 0.5
        fitted(tx, 1)  # the same object, its fingerprint changed
        model, _ = fitted(optax.sgd(_global_rate), 1)  # a fresh, equal one
        assert_same(model, reference(optax.sgd(0.5), 1)[0])
        traces = compiled.TRACES.count
        again, _ = fitted(optax.sgd(_global_rate), 1)  # equal again: no new program
        assert compiled.TRACES.count == traces
        assert_same(again, model)
        base_lr = 0.1
        back, _ = fitted(optax.sgd(_global_rate), 1)
        assert_same(back, reference(optax.sgd(0.1), 1)[0])
    finally:
        base_lr = 0.1


# 2. a learning rate injected as a schedule cannot be set by a callback

SCHEDULED = lambda: optax.inject_hyperparams(optax.sgd)(
    learning_rate=optax.linear_schedule(0.05, 0.01, 8)
)


@pytest.mark.parametrize(
    "callback",
    [
        T.LearningRateScheduler(lambda epoch: 0.01),
        T.ReduceLROnPlateau("loss", factor=0.1, patience=0, min_delta=10.0),
    ],
    ids=["LearningRateScheduler", "ReduceLROnPlateau"],
)
def test_rate_callback_refuses_a_scheduled_injected_rate(callback):
    traces = compiled.TRACES.count
    name = type(callback).__name__
    with pytest.raises(ValueError, match=rf"{name}: .*learning_rate is a schedule"):
        fitted(SCHEDULED(), 2, callbacks=[callback])
    assert compiled.TRACES.count == traces  # refused before the step compiled


def test_set_hyperparameter_refuses_a_scheduled_rate():
    state = SCHEDULED().init({"w": np.ones(2, np.float32)})
    with pytest.raises(ValueError, match="'learning_rate' is a schedule"):
        optimizers.set_hyperparameter(state, "learning_rate", 0.1)


# 5. optax.lookahead needs LookaheadParams


def test_lookahead_is_refused_before_the_step_compiles():
    traces = compiled.TRACES.count
    with pytest.raises(ValueError, match=r"optax\.lookahead.*LookaheadParams.*loop of your own"):
        fitted(optax.lookahead(optax.adam(1e-2), 3, 0.5), 1)
    assert compiled.TRACES.count == traces


# 6. an optax.MultiSteps object


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("k", [2, 3])
def test_multisteps_object_equals_accumulate_steps_and_the_reference(k):
    model, _ = fitted(optax.MultiSteps(optax.adam(1e-2), k), 2)
    ref = reference(optax.MultiSteps(optax.adam(1e-2), k).gradient_transformation(), 2)[0]
    assert_same(model, ref)
    assert_same(model, fitted(optax.adam(1e-2), 2, accumulate_steps=k)[0])


# 7. a learning rate injected in one of several injected parts


def _two_injected(rate=0.1):
    return optax.chain(
        optax.inject_hyperparams(optax.add_decayed_weights)(weight_decay=1e-3),
        optax.inject_hyperparams(optax.sgd)(learning_rate=rate),
    )


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_rate_injected_in_the_second_of_two_parts_is_logged_and_scheduled():
    schedule = T.LearningRateScheduler(lambda epoch: 0.1 * 0.5**epoch)
    model, history = fitted(_two_injected(), 3, callbacks=[schedule])
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]

    def at_epoch(epoch, state):
        rate = np.float32(0.1 * 0.5**epoch)
        return (state[0], state[1]._replace(hyperparams={**state[1].hyperparams,
                                                         "learning_rate": rate}))  # fmt: skip

    assert_same(model, reference(_two_injected(), 3, at_epoch=at_epoch)[0])


def test_rate_injected_in_the_second_part_is_reduced_on_plateau():
    reduce = T.ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10.0)
    model, history = fitted(_two_injected(), 3, callbacks=[reduce])
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05]  # epoch 1 stalled

    def at_epoch(epoch, state):
        rate = np.float32(0.05 if epoch == 2 else 0.1)
        return (state[0], state[1]._replace(hyperparams={**state[1].hyperparams,
                                                         "learning_rate": rate}))  # fmt: skip

    assert_same(model, reference(_two_injected(), 3, at_epoch=at_epoch)[0])


def test_rate_injected_twice_is_ambiguous():
    tx = optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
                     optax.inject_hyperparams(optax.sgd)(learning_rate=0.2))  # fmt: skip
    state = tx.init({"w": np.ones(1, np.float32)})
    with pytest.raises(ValueError, match=r"ambiguous.*opt_state\[0\], opt_state\[1\]"):
        optimizers.get_hyperparameter(state, "learning_rate")
    assert "learning_rate" not in optimizers.hyperparameters(state)
    with pytest.raises(ValueError, match=r"LearningRateScheduler: .*ambiguous"):
        fitted(tx, 1, callbacks=[T.LearningRateScheduler(lambda epoch: 0.1)])
