"""A loss, ``loss_fn`` or metric lambda defined again shares the compiled step.

A notebook cell run again defines fresh, equal lambdas; each compiled the whole train
step anew (about 1 s and 5-7 MB that were never freed). Functions are matched by their
code, closure and the globals they read, as Optax transformations already were.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnjax.train as T
from nnjax.train import compiled
from tests.train._data import blobs, mlp

ONE = jax.devices()[:1]
KW = dict(batch_size=16, verbose=0, devices=ONE, epochs=1)
scale = 1.0  # a global read by the losses below


def _loss():
    return lambda p, y: scale * optax.softmax_cross_entropy_with_integer_labels(p, y).mean()


def _loss_fn():
    def loss_fn(model, batch):
        values = optax.softmax_cross_entropy_with_integer_labels(model(batch.x), batch.y)
        return jnp.sum(values * batch.weight) / jnp.sum(batch.mask)

    return loss_fn


def _metric():
    return lambda p, y: jnp.mean(jnp.abs(p).max(-1))


def test_fresh_equal_functions_do_not_recompile():
    data = blobs(n=48)
    T.fit(mlp(seed=3), data, loss=_loss(), metrics=[_metric()], **KW)
    T.fit(mlp(seed=3), data, loss_fn=_loss_fn(), **KW)
    T.evaluate(mlp(seed=3), data, loss=_loss(), metrics=[_metric()], devices=ONE)
    traces = compiled.TRACES.count
    T.fit(mlp(seed=3), data, loss=_loss(), metrics=[_metric()], **KW)
    T.fit(mlp(seed=3), data, loss_fn=_loss_fn(), **KW)
    T.evaluate(mlp(seed=3), data, loss=_loss(), metrics=[_metric()], devices=ONE)
    assert compiled.TRACES.count == traces


def test_a_changed_global_gives_a_program_of_its_own():
    global scale
    data = blobs(n=48)
    try:
        first = T.fit(mlp(seed=4), data, loss=_loss(), **KW).history["loss"][0]
        scale = 2.0
        second = T.fit(mlp(seed=4), data, loss=_loss(), **KW).history["loss"][0]
    finally:
        scale = 1.0
    np.testing.assert_allclose(second, 2 * first, rtol=1e-5, atol=1e-6)


def test_functions_with_state_of_their_own_are_never_merged():
    """Two losses counting their calls in dicts of their own stay two (each its count)."""

    def counting():
        calls = {"n": 0}

        def count(_):
            calls["n"] += 1

        def loss(p, y):
            jax.debug.callback(count, p)
            return optax.softmax_cross_entropy_with_integer_labels(p, y).mean()

        return loss, calls

    data = blobs(n=48)
    (first, first_calls), (second, second_calls) = counting(), counting()
    T.fit(mlp(seed=5), data, loss=first, **KW)
    T.fit(mlp(seed=5), data, loss=second, **KW)
    assert first_calls["n"] == second_calls["n"] == 3  # 48 examples, batches of 16


class Config:
    scale = 1.0


def test_a_value_read_through_a_class_of_your_own_is_never_stale():
    """``Config.scale`` is read through a global class: two equal lambdas may differ."""

    def loss():
        return lambda p, y: (
            Config.scale * optax.softmax_cross_entropy_with_integer_labels(p, y).mean()
        )

    data = blobs(n=48)
    try:
        first = T.fit(mlp(seed=6), data, loss=loss(), **KW).history["loss"][0]
        Config.scale = 3.0
        second = T.fit(mlp(seed=6), data, loss=loss(), **KW).history["loss"][0]
    finally:
        Config.scale = 1.0
    np.testing.assert_allclose(second, 3 * first, rtol=1e-5, atol=1e-6)
