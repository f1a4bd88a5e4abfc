"""Tests for the checks of a callback list (nnjax.train.callbacks.as_callbacks) and the
schedule forms of LearningRateScheduler."""

import os

import jax
import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.train.callbacks import as_callbacks
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(loss="cross_entropy", batch_size=32, verbose=0, devices=ONE)


def _fit_refused(callbacks, match):
    """``fit`` refuses ``callbacks`` with ``match``, before training a step."""
    x, y = blobs()
    model = mlp()
    before = leaves(model)
    with pytest.raises(ValueError, match=match):
        T.fit(model, (x, y), epochs=2, callbacks=callbacks, **KW)
    for old, new in zip(before, leaves(model), strict=True):
        np.testing.assert_array_equal(old, new)


def test_one_instance_listed_twice_is_refused():
    stop = T.EarlyStopping("loss")
    _fit_refused([stop, T.Callback(), stop], r"callbacks\[2\] is callbacks\[0\] again")


def test_two_checkpoints_in_one_folder_are_refused(tmp_path):
    folder = tmp_path / "run"
    best = T.ModelCheckpoint(folder, monitor="loss", save_best_only=True)
    _fit_refused([T.ModelCheckpoint(folder), best], "both write")
    assert not folder.exists()  # nothing written


def test_the_same_folder_through_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    callbacks = [T.ModelCheckpoint(tmp_path / "real"), T.ModelCheckpoint(tmp_path / "link")]
    with pytest.raises(ValueError, match=r"callbacks\[0\] \(ModelCheckpoint\) and callbacks\[1\]"):
        as_callbacks(callbacks)


def test_two_csv_loggers_on_one_file_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    callbacks = [T.CSVLogger(tmp_path / "log.csv"), T.CSVLogger("~/log.csv")]
    _fit_refused(callbacks, "both write")
    assert not (tmp_path / "log.csv").exists()


def test_distinct_outputs_and_a_log_inside_the_checkpoint_folder_train(tmp_path):
    x, y = blobs()
    callbacks = [
        T.ModelCheckpoint(tmp_path / "run"),
        T.CSVLogger(tmp_path / "run" / "log.csv"),
        T.CSVLogger(tmp_path / "other.csv"),
    ]
    T.fit(mlp(), (x, y), epochs=2, callbacks=callbacks, **KW)
    assert T.latest_epoch(tmp_path / "run") == 1
    for path in (tmp_path / "run" / "log.csv", tmp_path / "other.csv"):
        assert len(path.read_text().splitlines()) == 3


def test_csv_logger_and_tensorboard_expand_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert T.CSVLogger("~/log.csv").filename == str(tmp_path / "log.csv")
    assert T.TensorBoard("~/board").log_dir == str(tmp_path / "board")


def _rates(schedule, epochs=3):
    x, y = blobs()
    callbacks = [T.LearningRateScheduler(schedule)]
    history = T.fit(mlp(), (x, y), epochs=epochs, learning_rate=0.1, callbacks=callbacks, **KW)
    return history.history["learning_rate"]


def test_scheduler_takes_a_one_argument_schedule():
    np.testing.assert_allclose(_rates(lambda epoch: 0.1 / (epoch + 1)), [0.1, 0.05, 0.1 / 3])


def test_scheduler_takes_an_optax_schedule_counting_epochs():
    schedule = optax.cosine_decay_schedule(0.1, decay_steps=4)
    expected = [float(schedule(epoch)) for epoch in range(3)]
    np.testing.assert_allclose(_rates(schedule), expected, rtol=1e-6, atol=1e-9)


def test_scheduler_passes_the_rate_to_two_argument_forms():
    def halve(*args):
        epoch, lr = args
        return lr / 2 if epoch else lr

    np.testing.assert_allclose(_rates(halve), [0.1, 0.05, 0.025], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(_rates(lambda epoch, lr=1.0: lr + epoch), [0.1, 1.1, 3.1])


def test_scheduler_refuses_a_schedule_without_positional_arguments():
    with pytest.raises(TypeError, match="takes no positional argument"):
        T.LearningRateScheduler(lambda: 0.1)


def test_one_argument_schedule_errors_name_the_call():
    with pytest.raises(ValueError, match=r"schedule\(0\) returned -1"):
        _rates(lambda epoch: -1.0)
