"""The metric-watching callbacks against Keras 3's semantics, epoch by epoch.

The rules are driven directly with a scripted metric sequence and a stand-in for the run
(what ``fit`` hands a callback as ``self.loop``); the expected decisions are traced by
hand from Keras 3's ``EarlyStopping`` / ``ReduceLROnPlateau`` (and, when Keras is
installed, compared with Keras itself). A few small fits check what the decisions drive.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
import nnjax.train as T
from nnjax.train import compiled
from tests.train._data import Scripted, blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(loss="cross_entropy", batch_size=96, verbose=0, devices=ONE)


class FakeRun:
    """What a callback needs of ``self.loop``: stop requests and the learning rate."""

    def __init__(self, lr=1.0):
        self.stop, self.lr = False, lr

    def request_stop(self):
        self.stop = True

    def get_hyperparameter(self, name):
        return self.lr

    def set_hyperparameter(self, name, value):
        self.lr = value


def drive_reduce(values, **kwargs):
    """The learning rate after each epoch's ``on_epoch_end``."""
    cb, run = T.ReduceLROnPlateau("m", factor=0.5, **{"mode": "min", **kwargs}), FakeRun()
    cb.set_loop(run)
    cb.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {"m": value})
        rates.append(run.lr)
    return rates


def drive_stop(values, **kwargs):
    """``(epoch of the stop or None, best_epoch)``."""
    cb, run = T.EarlyStopping("m", **{"mode": "min", **kwargs}), FakeRun()
    cb.set_loop(run)
    cb.on_train_begin()
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {"m": value})
        if run.stop:
            return epoch, cb.best_epoch
    return None, cb.best_epoch


def test_reduce_lr_counts_no_stall_during_cooldown():
    # Keras: epoch 1 reduces and starts a cooldown of 2; epoch 2 is still cooling down
    # (no stall counted), epoch 3 counts one again and reduces (patience=1), and so on.
    rates = drive_reduce([1.0] * 7, patience=1, cooldown=2)
    assert rates == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    # patience=2, cooldown=2: stalls at 1, 2 -> reduce; 3 cools; 4, 5 -> reduce
    assert drive_reduce([1.0] * 7, patience=2, cooldown=2) == [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_reduce_lr_improvements_during_cooldown_and_min_lr():
    # an improvement during the cooldown still moves the best value (epoch 2: 0.5), so
    # 0.6 at epoch 3 is a stall
    values = [1.0, 1.0, 0.5, 0.6, 0.6, 0.6]
    assert drive_reduce(values, patience=1, cooldown=2) == [1, 0.5, 0.5, 0.25, 0.25, 0.125]
    # min_lr bounds every reduction
    assert drive_reduce([1.0] * 5, patience=1, min_lr=0.3) == [1, 0.5, 0.3, 0.3, 0.3]


@pytest.mark.parametrize(
    "values, kwargs, expected",
    [
        ([1.0, 0.9, 0.95, 0.96, 0.8], dict(patience=2), (3, 1)),
        ([1.0, 0.9, 0.95, 0.96, 0.8], dict(patience=3), (None, 4)),
        # min_delta: 0.95 is not enough below 1.0 in mode min
        ([1.0, 0.95, 0.85, 0.84], dict(patience=1, min_delta=0.1), (1, 0)),
        # mode max, and a min_delta counted upwards
        ([0.5, 0.55, 0.7, 0.65], dict(patience=1, mode="max", min_delta=0.1), (1, 0)),
        ([0.5, 0.7, 0.9, 0.85], dict(patience=1, mode="max"), (3, 2)),
        # auto: an accuracy is maximised
        ([0.5, 0.4], dict(patience=0, mode="auto"), (1, 0)),
        # patience=0 stops at the first stall
        ([3.0, 2.0, 2.5], dict(patience=0), (2, 1)),
    ],
)
def test_early_stopping_decisions(values, kwargs, expected):
    if kwargs.get("mode") == "auto":
        cb, run = T.EarlyStopping("val_accuracy", **kwargs), FakeRun()
        cb.set_loop(run)
        cb.on_train_begin()
        for epoch, value in enumerate(values):
            cb.on_epoch_end(epoch, {"val_accuracy": value})
        assert (cb.stopped_epoch, cb.best_epoch) == expected
        return
    assert drive_stop(values, **kwargs) == expected


def test_keras_takes_the_same_decisions():
    os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras is in the `bench` extra
    keras_callbacks = pytest.importorskip("keras.src.callbacks")

    class KerasModel:  # what Keras' callbacks touch
        def __init__(self):
            self.stop_training = False
            self.optimizer = type("Opt", (), {"learning_rate": 1.0})()

        def get_weights(self):
            return None

    rng = np.random.default_rng(0)
    for trial in range(60):
        values = list(np.round(rng.normal(size=10).cumsum() * 0.1, 3))
        mode = ("min", "max")[trial % 2]
        stop = dict(patience=int(rng.integers(0, 4)), min_delta=float(rng.choice([0, 0.05])))
        model = KerasModel()
        keras_stop = keras_callbacks.EarlyStopping(monitor="m", mode=mode, **stop)
        keras_stop.set_model(model)
        keras_stop.on_train_begin()
        keras_at = None
        for epoch, value in enumerate(values):
            keras_stop.on_epoch_end(epoch, {"m": value})
            if model.stop_training:
                keras_at = epoch
                break
        assert drive_stop(values, mode=mode, **stop)[0] == keras_at, (values, mode, stop)
        reduce = dict(patience=int(rng.integers(0, 3)), cooldown=int(rng.integers(0, 3)))
        model = KerasModel()
        keras_reduce = keras_callbacks.ReduceLROnPlateau(
            monitor="m", mode=mode, factor=0.5, min_delta=0.0, **reduce
        )
        keras_reduce.set_model(model)
        keras_reduce.on_train_begin()
        keras_rates = []
        for epoch, value in enumerate(values):
            keras_reduce.on_epoch_end(epoch, {"m": value})
            keras_rates.append(float(model.optimizer.learning_rate))
        ours = drive_reduce(values, mode=mode, min_delta=0.0, **reduce)
        np.testing.assert_allclose(ours, keras_rates, rtol=0, atol=1e-12, err_msg=str(reduce))


def test_early_stopping_attributes_exist_before_training():
    stop = T.EarlyStopping("val_loss", patience=2)
    assert (stop.stopped_epoch, stop.best_epoch, stop.wait, stop.best_weights) == (
        None,
        None,
        0,
        None,
    )


def test_unknown_mode_names_the_callback():
    with pytest.raises(ValueError, match="EarlyStopping: `mode` must be 'min', 'max' or 'auto'"):
        T.EarlyStopping("loss", mode="up")
    with pytest.raises(ValueError, match="ReduceLROnPlateau: `mode`"):
        T.ReduceLROnPlateau("loss", mode="lower")


def test_restore_best_weights_also_when_stopping_never_triggers():
    script = Scripted([1.0, 0.5, 0.7, 0.8])
    stop = T.EarlyStopping("val_loss", patience=10, restore_best_weights=True)
    model = mlp()
    history = T.fit(
        model, blobs(), epochs=4, validation_data=blobs(n=8), callbacks=[script, stop], **KW
    )
    assert len(history) == 4 and stop.stopped_epoch is None and stop.best_epoch == 1
    for best, now in zip(script.params[1], leaves(model)):
        np.testing.assert_array_equal(best, now)


def test_reduce_lr_reaches_the_compiled_step_without_recompiling():
    def run():
        script = Scripted([1.0] * 4)
        reduce = T.ReduceLROnPlateau("val_loss", factor=1e-6, patience=1, min_lr=1e-7)
        history = T.fit(
            mlp(), blobs(), optimizer=optax.sgd, epochs=4, learning_rate=0.1,
            validation_data=blobs(n=8), callbacks=[script, reduce], **KW,
        )  # fmt: skip
        return history, script.params

    run()  # compiles
    traces = compiled.TRACES.count
    history, params = run()
    assert compiled.TRACES.count == traces
    np.testing.assert_allclose(
        history["learning_rate"], [0.1, 0.1, 1e-7, 1e-7], rtol=1e-6, atol=1e-7
    )
    moved = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    # epoch 1 trains at 0.1, epoch 2 at 1e-7: a million times smaller steps (one step each)
    assert moved(params[0], params[1]) > 1e-4
    assert moved(params[1], params[2]) < 1e-6


def test_reduce_lr_refuses_an_optimizer_without_an_injected_rate_before_training():
    seen = []

    class Epochs(T.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    reduce = T.ReduceLROnPlateau("loss", patience=1)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: the optimizer state has no"):
        T.fit(mlp(), blobs(), optimizer=optax.sgd(0.1), epochs=3, callbacks=[Epochs(), reduce],
              **KW)  # fmt: skip
    assert seen == []


def test_learning_rate_scheduler_checks_its_schedule_and_result():
    with pytest.raises(TypeError, match="`schedule` must be a function"):
        T.LearningRateScheduler(0.1)
    none = r"LearningRateScheduler: schedule\(0, 0\.001\) returned None \(NoneType\)"
    with pytest.raises(TypeError, match=none):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[T.LearningRateScheduler(lambda e, lr: None)],
              **KW)  # fmt: skip
    negative = r"schedule\(0, 0\.001\) returned -1\.0; a learning_rate must be a finite number"
    with pytest.raises(ValueError, match=negative):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[T.LearningRateScheduler(lambda e, lr: -1.0)],
              **KW)  # fmt: skip
    # an Optax schedule returns a 0-d array: taken as is
    decay = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    schedule = T.LearningRateScheduler(lambda epoch, lr: decay(epoch))
    history = T.fit(mlp(), blobs(), epochs=3, callbacks=[schedule], **KW)
    np.testing.assert_allclose(history["learning_rate"], [0.1, 0.05, 0.025], rtol=1e-6, atol=1e-7)
    assert isinstance(decay(0), jnp.ndarray)


def test_a_callback_that_raises_keeps_the_model_and_the_checkpoints(tmp_path):
    class Boom(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("boom")

    model = mlp()
    folder = tmp_path / "run"
    checkpoint = T.ModelCheckpoint(folder, max_to_keep=None)
    with pytest.raises(RuntimeError, match="boom"):
        T.fit(model, blobs(), epochs=5, callbacks=[checkpoint, Boom()], **KW)
    assert sorted(os.listdir(folder)) == ["1", "2", "3"]
    # the model holds the weights of the last completed epoch, as the newest checkpoint
    for saved, now in zip(leaves(nnjax.load(folder)), leaves(model)):
        np.testing.assert_array_equal(saved, now)
    history = T.fit(model, blobs(), epochs=1, **KW)  # and it trains on
    assert np.isfinite(history["loss"][0])


def test_a_misspelt_monitor_names_what_is_logged():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"monitors 'val_los'.*logs: loss, accuracy, val_loss"):
        T.fit(mlp(), (x, y), epochs=1, validation_data=(x, y),
              callbacks=[T.ReduceLROnPlateau("val_los", mode="min")], **KW)  # fmt: skip
