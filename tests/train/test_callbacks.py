"""Tests for nnjax.train.callbacks: monitors, early stopping, learning-rate callbacks."""

import math

import jax
import numpy as np
import pytest

import nnjax.train as T
from nnjax.train.callbacks import CallbackList, Monitor
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(loss="cross_entropy", batch_size=32, verbose=0, devices=ONE)


class FakeValLoss(T.Callback):
    """Overwrites val_loss with a scripted sequence (runs before the callbacks under test)."""

    def __init__(self, values):
        self.values = values
        self.params = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.params.append(jax.device_get(self.loop.state.params))


def test_monitor_modes():
    assert Monitor("val_accuracy").mode == "max"
    m = Monitor("loss", min_delta=0.1)
    assert m.update({"loss": 1.0}) and not m.update({"loss": 0.95}) and m.update({"loss": 0.8})
    with pytest.raises(KeyError, match="available: loss"):
        Monitor("val_loss").value({"loss": 1.0})
    with pytest.raises(ValueError, match="mode"):
        Monitor("loss", mode="up")


@pytest.mark.parametrize(
    ("name", "mode"),
    [("val_r2", "max"), ("r2", "max"), ("val_f1_macro", "max"), ("val_layer2_loss", "min"),
     ("val_mse", "min"), ("val_accel_loss", "min"),
     ("val_f1_head_loss", "min"), ("val_accel_mae", "min"), ("val_cls_top_k_accuracy", "max"),
     ("precision_micro", "max"), ("val_recall_binary", "max"), ("val_auc", "max"),
     ("acc", "max"), ("val_Accuracy", "max")],
)  # fmt: skip
def test_auto_mode_maximises_scores_only(name, mode):
    """The last word decides: ``r2`` is a score; an output named ``accel`` or ``f1_head``
    logs losses (they were maximised, so EarlyStopping kept the worst epoch)."""
    assert Monitor(name).mode == mode == T.monitor.auto_mode(name)


def test_early_stopping_stops_and_restores_best():
    fake = FakeValLoss([1.0, 0.5, 0.7, 0.8, 0.9, 0.1])
    stop = T.EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    model = mlp()
    history = T.fit(
        model,
        blobs(),
        epochs=6,
        learning_rate=1e-2,
        validation_data=blobs(n=8),
        callbacks=[fake, stop],
        **KW,
    )
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    expected = [np.asarray(a) for a in jax.tree.leaves(fake.params[1])]
    for a, b in zip(expected, leaves(model)):
        np.testing.assert_array_equal(a, b)


def test_callbacks_must_be_callback_instances():
    with pytest.raises(TypeError, match="Callback instances"):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[print], **KW)
    with pytest.raises(TypeError, match=r"got one EarlyStopping; wrap it: callbacks=\[Early"):
        T.fit(mlp(), blobs(), epochs=1, callbacks=T.EarlyStopping("loss"), **KW)
    with pytest.raises(TypeError, match="list of Callback instances, got int"):
        CallbackList(3)
    assert CallbackList(None).callbacks == []  # as in Keras


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: T.EarlyStopping("loss", patience="2"), TypeError, "`patience` must be an integer"),
        (lambda: T.EarlyStopping("loss", patience=-1), ValueError, "`patience` must be >= 0"),
        (lambda: T.EarlyStopping("loss", min_delta=-0.1), ValueError, "min_delta.*>= 0, got -0.1"),
        (lambda: T.EarlyStopping("loss", min_delta=math.nan), ValueError, "min_delta.*finite"),
        (lambda: T.EarlyStopping("loss", min_delta="0"), TypeError, "`min_delta` must be a number"),
        (lambda: T.EarlyStopping(2), TypeError, "`monitor` must be the name"),
        (lambda: T.ReduceLROnPlateau(factor="0.5"), TypeError, "`factor` must be a number"),
        (lambda: T.ReduceLROnPlateau(factor=1.5), ValueError, r"factor must lie in \(0, 1\)"),
        (lambda: T.ReduceLROnPlateau(patience=2.0), TypeError, "`patience` must be an integer"),
        (lambda: T.ReduceLROnPlateau(cooldown=-1), ValueError, "`cooldown` must be >= 0"),
        (lambda: T.ReduceLROnPlateau(min_lr=-1e-3), ValueError, "`min_lr` must be a finite"),
        (lambda: T.ReduceLROnPlateau(min_delta=-1), ValueError, "`min_delta` must be a finite"),
        (lambda: T.EarlyStopping(restore_best_weights="no"), TypeError, "`restore_best_weights`"),
        (lambda: T.ModelCheckpoint(None), TypeError, "ModelCheckpoint: `directory` must be a path"),
        (lambda: T.ModelCheckpoint("c", save_best_only=1), TypeError, "`save_best_only` must be"),
        (lambda: T.ModelCheckpoint("c", overwrite="y"), TypeError, "`overwrite` must be a Python"),
        (lambda: T.CSVLogger(3), TypeError, "CSVLogger: `filename` must be a path"),
        (lambda: T.CSVLogger("h.csv", append="no"), TypeError, "CSVLogger: `append` must be"),
        (lambda: T.TensorBoard(None), TypeError, "TensorBoard: `log_dir` must be a path"),
    ],
)
def test_early_stopping_and_reduce_lr_check_their_numbers(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_monitored_names_are_checked_before_training():
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'val_loss'.*logs: loss"):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[T.EarlyStopping("val_loss")], **KW)
    with pytest.raises(ValueError, match=r"ModelCheckpoint monitors 'val_acc'"):
        T.fit(
            mlp(),
            blobs(),
            validation_data=blobs(n=8),
            callbacks=[T.ModelCheckpoint("/nonexistent", monitor="val_acc")],
            **KW,
        )


class _Score(T.Callback):
    """Writes a scripted ``score`` (best at epoch 1), declared in ``writes_logs``."""

    writes_logs = ("score",)

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = [3.0, 1.0, 2.0, 2.0, 2.0][epoch]


def test_a_name_a_callback_declares_may_be_monitored_after_it():
    stop = T.EarlyStopping("score", mode="min", patience=2)
    history = T.fit(mlp(), blobs(), epochs=5, callbacks=[_Score(), stop], **KW)
    assert (stop.best_epoch, stop.stopped_epoch) == (1, 3)
    assert history.history["score"] == [3.0, 1.0, 2.0, 2.0]


def test_a_declared_name_monitored_before_its_writer_names_the_order():
    stop = T.EarlyStopping("score", mode="min")
    with pytest.raises(ValueError, match=r"which _Score writes later.*list _Score before Early"):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[stop, _Score()], **KW)


def test_an_undeclared_name_is_refused_before_training():
    class Undeclared(_Score):
        writes_logs = ()

    stop = T.EarlyStopping("score", mode="min")
    with pytest.raises(ValueError, match=r"will not log.*declares it in `writes_logs`"):
        T.fit(mlp(), blobs(), epochs=1, callbacks=[Undeclared(), stop], **KW)


def test_reduce_lr_on_plateau_lowers_the_logged_rate():
    fake = FakeValLoss([1.0, 1.0, 1.0, 1.0, 1.0])
    reduce = T.ReduceLROnPlateau("val_loss", factor=0.5, patience=2)
    history = T.fit(
        mlp(),
        blobs(),
        epochs=5,
        learning_rate=0.1,
        validation_data=blobs(n=8),
        callbacks=[fake, reduce],
        **KW,
    )
    np.testing.assert_allclose(
        history["learning_rate"], [0.1, 0.1, 0.1, 0.05, 0.05], rtol=1e-6, atol=1e-9
    )


def test_learning_rate_scheduler_sets_the_rate_without_recompiling():
    from nnjax.train import compiled

    schedule = T.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    T.fit(mlp(), blobs(), epochs=1, callbacks=[schedule], **KW)
    traces = compiled.TRACES.count
    history = T.fit(mlp(), blobs(), epochs=3, callbacks=[schedule], **KW)
    np.testing.assert_allclose(history["learning_rate"], [0.1, 0.05, 0.1 / 3], rtol=1e-6, atol=1e-9)
    assert compiled.TRACES.count == traces


def test_set_hyperparameter_needs_an_injected_optimizer():
    class SetRate(T.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.loop.set_hyperparameter("learning_rate", 0.1)

    import optax

    with pytest.raises(ValueError, match="no injected hyperparameter 'learning_rate'.*inside a "
                       r"chain too: optax.chain\(.*optax.inject_hyperparams"):  # fmt: skip
        T.fit(mlp(), blobs(), optimizer=optax.sgd(0.1), callbacks=[SetRate()], **KW)
