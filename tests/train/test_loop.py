"""Tests for nnjax.train.fit (loop.py): determinism, compiles, sharding, precision, data."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.nn import MLP
from nnjax.train import compiled
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]


def test_fit_same_seed_is_bitwise_reproducible():
    data = blobs()
    runs = []
    for _ in range(2):
        model = mlp(dropout=0.2)
        T.fit(model, data, loss="cross_entropy", epochs=2, batch_size=32, seed=3, verbose=0)
        runs.append(leaves(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = mlp(dropout=0.2)
    T.fit(other, data, loss="cross_entropy", epochs=2, batch_size=32, seed=4, verbose=0)
    assert not np.array_equal(leaves(other)[0], runs[0][0])  # the seed changes data order


def test_fit_history_and_weights_land_in_model():
    x, y = blobs()
    model = mlp()
    before = leaves(model)
    history = T.fit(
        model,
        (x, y),
        loss="cross_entropy",
        epochs=3,
        batch_size=16,
        validation_data=(x, y),
        optimizer="adam",
        learning_rate=1e-2,
        verbose=0,
        devices=ONE,
    )
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    }
    assert history["learning_rate"] == [0.01] * 3
    assert history["loss"][-1] < history["loss"][0]
    assert not np.array_equal(before[0], leaves(model)[0])
    # the logged validation metrics are those of the final weights
    logs = T.evaluate(model, (x, y), loss="cross_entropy", devices=ONE)
    np.testing.assert_allclose(history["val_loss"][-1], logs["loss"], rtol=1e-5, atol=1e-5)


def test_no_recompilation_between_epochs_or_fit_calls():
    x, y = blobs(n=100)  # 7 batches of 16 (the last padded): dispatches of 4 and 3 steps
    model = mlp(seed=11)
    kw = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=ONE, steps_per_dispatch=4)
    T.fit(model, (x, y), epochs=1, validation_data=(x, y), learning_rate=0.1, **kw)
    traces = compiled.TRACES.count  # the train and the validation dispatches' traces
    T.fit(model, (x, y), epochs=3, validation_data=(x, y), learning_rate=0.01, **kw)
    T.fit(model, (x, y), epochs=1, optimizer=optax.adam, learning_rate=0.3, **kw)  # = "adam"
    assert compiled.TRACES.count == traces
    T.fit(model, (x, y), epochs=1, optimizer="sgd", learning_rate=0.3, **kw)
    assert compiled.TRACES.count == traces + 1  # another optimizer kind compiles once


def test_a_fresh_equal_optax_object_does_not_recompile():
    x, y = blobs(n=48)
    kw = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=ONE)
    T.fit(mlp(seed=12), (x, y), optimizer=optax.rmsprop(0.0123), **kw)
    traces = compiled.TRACES.count
    T.fit(mlp(seed=12), (x, y), optimizer=optax.rmsprop(0.0123), **kw)
    assert compiled.TRACES.count == traces


@pytest.mark.devices(4)
def test_sharded_fit_matches_single_device_and_shards_batches():
    assert len(jax.devices()) == 4
    data = blobs(n=64)
    seen = []

    class Spy(T.Callback):
        def on_dispatch_end(self, step, batch):
            seen.append(self.loop.state.params)

    results = []
    for devices, callbacks in ((jax.devices(), [Spy()]), (ONE, [])):
        model = mlp()
        T.fit(
            model,
            data,
            loss="cross_entropy",
            epochs=2,
            batch_size=16,
            optimizer="sgd",
            learning_rate=0.1,
            devices=devices,
            callbacks=callbacks,
            verbose=0,
        )
        results.append(leaves(model))
    assert all(
        a.sharding.is_fully_replicated and len(a.sharding.device_set) == 4
        for a in jax.tree.leaves(seen[0])
    )
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_default_devices_fall_back_to_one_when_batch_does_not_divide():
    spy = []

    class Spy(T.Callback):
        def on_dispatch_end(self, step, batch):
            spy.append(len(self.loop.mesh.devices.flat))

    T.fit(
        mlp(),
        blobs(n=30),
        loss="cross_entropy",
        epochs=1,
        batch_size=10,
        verbose=0,
        callbacks=[Spy()],
    )
    assert spy == [1]


def test_validation_rows_the_devices_do_not_divide_are_padded_and_masked():
    # Batches of 16 split over 4 devices; 6 validation rows do not split over them.
    data, model = blobs(n=32), mlp()
    val = (data[0][:6], data[1][:6])
    history = T.fit(model, data, loss="cross_entropy", epochs=1, batch_size=16,
                    validation_data=val, verbose=0)  # fmt: skip
    expected = T.evaluate(model, val, loss="cross_entropy", devices=ONE)
    np.testing.assert_allclose(
        history.history["val_loss"][-1], expected["loss"], rtol=1e-6, atol=1e-7
    )
    assert history.history["val_accuracy"][-1] == expected["accuracy"]


def test_mixed_precision_bfloat16_compute_trains():
    x, y = blobs()
    model = mlp(dtype=jnp.bfloat16)
    history = T.fit(
        model,
        (x, y),
        loss="cross_entropy",
        epochs=5,
        batch_size=16,
        learning_rate=1e-2,
        verbose=0,
        devices=ONE,
    )
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert all(a.dtype == np.float32 for a in leaves(model))
    assert T.predict(model, x[:3], devices=ONE).dtype == jnp.bfloat16


def test_non_finite_loss_raises_with_epoch_and_step():
    x, y = blobs()
    model = mlp(classes=1)
    with pytest.raises(T.NonFiniteLossError, match=r"in epoch \d+, update \d+ of the epoch") as err:
        T.fit(
            model,
            (x * 1e4, y.astype(np.float32)[:, None] * 1e4),
            loss="mse",
            optimizer="sgd",
            learning_rate=1e4,
            epochs=3,
            batch_size=16,
            metrics=(),
            verbose=0,
            devices=ONE,
        )
    assert not np.isfinite(err.value.value)
    where = f"in epoch {err.value.epoch + 1}, update {err.value.step + 1} "  # as the bar counts
    assert where in str(err.value)


def test_callback_can_stop_training():
    class StopAtOne(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.loop.request_stop()
            with pytest.raises(AttributeError):
                self.loop.state = None  # the view is read-only

    history = T.fit(
        mlp(),
        blobs(),
        loss="cross_entropy",
        epochs=5,
        batch_size=32,
        verbose=0,
        callbacks=[StopAtOne()],
        devices=ONE,
    )
    assert history.epoch == [0, 1]


def test_verbose_two_prints_one_line_per_epoch(capsys):
    T.fit(mlp(), blobs(), loss="cross_entropy", epochs=2, batch_size=32, verbose=2, devices=ONE)
    out = capsys.readouterr().out.splitlines()
    # a first compile adds its own two lines (whether it happens depends on test order)
    lines = [line for line in out if line.startswith("Epoch") and "compil" not in line]
    assert len(lines) == 2 and all("loss:" in line for line in lines)


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_fit_digits_reaches_95_percent():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=0.25, random_state=0)
    model = MLP(64, (64,), 10, rngs=nnx.Rngs(0))
    T.fit(
        model,
        (xtr, ytr),
        loss="cross_entropy",
        optimizer="adam",
        learning_rate=1e-2,
        epochs=8,
        batch_size=32,
        verbose=0,
        devices=ONE,
    )
    acc = T.evaluate(model, (xte, yte), loss="cross_entropy", devices=ONE)["accuracy"]
    assert acc >= 0.95


def test_weights_after_interrupt_and_after_nan():
    class Interrupt(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    model = mlp()
    before = leaves(model)
    with pytest.raises(KeyboardInterrupt):
        T.fit(
            model,
            blobs(),
            loss="cross_entropy",
            epochs=3,
            verbose=0,
            devices=ONE,
            callbacks=[Interrupt()],
        )
    assert not np.array_equal(before[0], leaves(model)[0])  # trained weights are kept

    class Poison(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            nan = jax.tree.map(lambda a: a * jnp.nan, self.loop.state.params)
            self.loop.restore_weights(nan, self.loop.state.rest)

    model = mlp()
    with pytest.raises(T.NonFiniteLossError):
        T.fit(
            model,
            blobs(),
            loss="cross_entropy",
            epochs=2,
            verbose=0,
            devices=ONE,
            callbacks=[Poison()],
        )
    for a, b in zip(before, leaves(model)):  # NaN weights never reach the model
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_batch_statistics_are_carried_through_fit():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(4, 3, rngs=rngs)
            self.norm = nnx.BatchNorm(3, momentum=0.5, rngs=rngs)

        def __call__(self, x):
            return self.norm(self.dense(x))

    x, y = blobs()
    model = Net(nnx.Rngs(0))
    T.fit(model, (x, y), loss="cross_entropy", epochs=2, batch_size=32, verbose=0, devices=ONE)
    mean = np.asarray(model.norm.mean[...])
    assert np.abs(mean).max() > 0.1  # running statistics were updated by every step
    model.eval()
    hidden = np.asarray(model.dense(x))
    np.testing.assert_allclose(mean, hidden.mean(0), atol=0.5)  # close to the data mean
    np.testing.assert_allclose(T.predict(model, x, devices=ONE), model(x), rtol=1e-5, atol=1e-6)


def test_validation_is_a_deprecated_alias_of_validation_data():
    x, y = blobs(n=32)
    with pytest.warns(DeprecationWarning, match="validation_data"):
        history = T.fit(
            mlp(), (x, y), loss="cross_entropy", validation=(x, y), verbose=0, devices=ONE
        )
    assert "val_loss" in history.history


@pytest.mark.parametrize("error", [ValueError, TypeError, RuntimeError])
def test_a_callbacks_error_keeps_the_trained_weights_but_a_bad_batch_does_not(error):
    class Broken(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise error("bug in my callback")

    x, y = blobs()
    model = mlp()
    before = leaves(model)
    with pytest.raises(error, match="bug in my callback"):
        T.fit(model, (x, y), loss="cross_entropy", epochs=3, verbose=0, devices=ONE,
              callbacks=[Broken()])  # fmt: skip
    assert not np.array_equal(before[0], leaves(model)[0])  # two epochs' training kept
    # a bad batch of the data (after some updates): the weights it had before fit
    batches = [(x[:16], y[:16]), (x[16:32], y[16:32]), (x[32:48], y[32:48].astype(np.float32))]
    before = leaves(model)
    with pytest.raises((ValueError, TypeError), match="batch 2"):
        T.fit(model, batches, loss="cross_entropy", epochs=1, verbose=0, devices=ONE,
              steps_per_dispatch=1)  # fmt: skip
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_beside_an_optax_transformation_is_refused_before_training():
    model = mlp()
    before = leaves(model)
    with pytest.raises(ValueError, match=r"learning_rate=0.5 and an Optax transformation"):
        T.fit(model, blobs(), loss="cross_entropy", optimizer=optax.sgd(1e-9), learning_rate=0.5)
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="learning_rate"):
        T.fit(model, blobs(), loss="cross_entropy", learning_rate=-1.0)
    history = T.fit(model, blobs(), loss="cross_entropy", optimizer="sgd", verbose=0)
    assert history.history["learning_rate"] == [pytest.approx(T.loop.DEFAULT_LEARNING_RATE)]


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (dict(seed="42"), TypeError, "seed"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(callbacks=T.EarlyStopping("loss")), TypeError, r"wrap it: callbacks=\[EarlyStopping"),
        (dict(callbacks=[print]), TypeError, "Callback"),
    ],
)
def test_a_bad_seed_or_callbacks_is_refused_before_anything_compiles(kw, error, match):
    model = mlp()
    before = leaves(model)
    traces = compiled.TRACES.count
    with pytest.raises(error, match=match):
        T.fit(model, blobs(), loss="cross_entropy", verbose=0, **kw)
    assert compiled.TRACES.count == traces
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)
    T.fit(model, blobs(), loss="cross_entropy", verbose=0, callbacks=None)  # None: no callbacks


@pytest.mark.parametrize("extra", [{}, {"accumulate_steps": 2}, {"validation_split": 0.25}])
def test_epochs_0_trains_nothing_and_returns_an_empty_history(extra):  # as Keras
    class Calls(T.Callback):
        seen: list = []  # noqa: RUF012

        def on_train_begin(self, logs=None):
            self.seen.append("begin")

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append(epoch)

        def on_train_end(self, logs=None):
            self.seen.append("end")

    model = MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    before = jax.tree.map(np.array, nnx.state(model, nnx.Param))
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    calls = Calls()
    calls.seen = []
    data = (x, np.arange(40) % 3)
    history = T.fit(
        model, data, loss="cross_entropy", epochs=0, verbose=0, callbacks=[calls], **extra
    )
    assert history.history == {} and history.epoch == []
    assert calls.seen == ["begin", "end"]
    after = nnx.state(model, nnx.Param)
    pairs = zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
