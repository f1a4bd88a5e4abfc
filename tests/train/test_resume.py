"""``resume_from``: the run folder checked before training; a finished run resumed."""

import jax
import numpy as np
import pytest

import nnjax
import nnjax.train as T
from nnjax.train import resume
from tests.train._data import blobs, leaves, mlp

KW = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=jax.devices()[:1], seed=5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with checkpoints of epochs 1..3 (and the trained model's weights)."""
    folder = tmp_path_factory.mktemp("run") / "ckpt"
    model = mlp()
    T.fit(model, blobs(), epochs=3, callbacks=[T.ModelCheckpoint(folder)], **KW)
    return folder, leaves(model)


def test_a_step_folder_or_a_file_is_refused_before_training(run, tmp_path):
    folder, _ = run
    model = mlp()
    before = leaves(model)
    with pytest.raises(ValueError, match=rf"is one checkpoint, not a run folder.*\({folder}"):
        T.fit(model, blobs(), epochs=5, resume_from=folder / "2", **KW)
    saved = tmp_path / "model"
    nnjax.save(model, saved)  # a model written by nnjax.save: the same
    with pytest.raises(ValueError, match=r"nnjax\.load"):
        T.fit(model, blobs(), epochs=5, resume_from=saved, **KW)
    afile = tmp_path / "run.ckpt"
    afile.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        T.fit(model, blobs(), epochs=5, resume_from=afile, **KW)
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)
    resume.check_run_folder(tmp_path / "not-started-yet")  # the first run of a script


def test_a_checkpoint_of_more_epochs_is_refused_and_a_finished_run_resumes_as_done(run):
    folder, trained = run
    model = mlp()
    before = leaves(model)
    with pytest.raises(ValueError, match=r"already holds 3 epochs, more than epochs=2"):
        T.fit(model, blobs(), epochs=2, resume_from=folder, **KW)
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)
    history = T.fit(model, blobs(), epochs=3, resume_from=folder, **KW)  # a rerun: nothing left
    assert history.epoch == [0, 1, 2]
    for a, b in zip(trained, leaves(model)):
        np.testing.assert_array_equal(a, b)


def test_an_unwritable_checkpoint_folder_fails_before_anything_trains(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    model = mlp()
    traces = T.compiled.TRACES.count
    with pytest.raises(OSError, match=f"cannot write {blocker}/ckpt: {blocker} is a file"):
        T.fit(model, blobs(), epochs=2, callbacks=[T.ModelCheckpoint(blocker / "ckpt")], **KW)
    assert T.compiled.TRACES.count == traces  # nothing traced, nothing trained


def test_resume_mid_accumulation_with_dropout_is_bitwise_the_uninterrupted_run(tmp_path):
    """50 rows in batches of 16: 4 batches an epoch, so with ``accumulate_steps=3`` the
    checkpoint of epoch 2 holds a half-accumulated gradient (``optax.MultiSteps``), the
    dropout streams and the validation split; the resumed run must end bitwise equal."""
    x, y = blobs(n=50)
    kw = dict(KW, accumulate_steps=3, steps_per_dispatch=3, validation_split=0.2)

    def go(epochs, **more):
        model = mlp(dropout=0.3)
        history = T.fit(model, (x, y), epochs=epochs, **kw, **more)
        return leaves(model), history

    full, full_history = go(5)
    go(2, callbacks=[T.ModelCheckpoint(tmp_path)])
    resumed, history = go(5, resume_from=tmp_path)
    for a, b in zip(full, resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.history == full_history.history and history.epoch == [0, 1, 2, 3, 4]


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("checkpoint_first", [True, False])
def test_resume_with_reduce_lr_on_plateau_is_the_uninterrupted_run(tmp_path, checkpoint_first):
    # the counters are replayed from the resumed history; a ModelCheckpoint listed first
    # saved before the reduction due after epoch 4, which the resumed run makes
    x, y = blobs(n=50)

    kw = dict(KW, seed=0, validation_split=0.2)

    def go(epochs, folder=None, **more):
        model = mlp(seed=2, dropout=0.3)
        cbs = [T.ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)]
        if folder is not None:
            cbs.insert(0 if checkpoint_first else 1, T.ModelCheckpoint(folder))
        history = T.fit(model, (x, y), epochs=epochs, callbacks=cbs, **kw, **more)
        return leaves(model), history

    params, full = go(5)
    go(4, tmp_path)  # its last epoch reduces the rate: the checkpoint must hold that
    resumed_params, resumed = go(5, tmp_path, resume_from=tmp_path)
    assert resumed["learning_rate"] == full["learning_rate"]
    assert len(set(full["learning_rate"])) > 2  # it was reduced more than once
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-6, atol=1e-7)
    for a, b in zip(resumed_params, params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_resume_with_early_stopping_stops_where_the_uninterrupted_run_stops(tmp_path):
    x, y = blobs(n=50)
    kw = dict(KW, seed=0, validation_split=0.2)

    def go(epochs, folder=None, **more):
        stop = T.EarlyStopping("val_loss", patience=2, min_delta=0.05)
        cbs = [stop] + ([T.ModelCheckpoint(folder)] if folder is not None else [])
        history = T.fit(mlp(seed=2), (x, y), epochs=epochs, callbacks=cbs, **kw, **more)
        return stop, history

    stop, full = go(30)
    assert stop.stopped_epoch is not None and stop.stopped_epoch >= 2
    go(stop.stopped_epoch, tmp_path)  # interrupted one epoch before the stop
    resumed_stop, resumed = go(30, tmp_path, resume_from=tmp_path)
    assert (resumed_stop.stopped_epoch, resumed_stop.best_epoch, resumed_stop.wait) == (
        stop.stopped_epoch,
        stop.best_epoch,
        stop.wait,
    )
    assert len(resumed["loss"]) == len(full["loss"])


class _Doubles(T.Callback):
    """Writes a value of its own into the epoch's logs (as a user's callback may)."""

    def on_epoch_end(self, epoch, logs=None):
        logs["twice_loss"] = 2.0 * logs["loss"]


def test_values_callbacks_write_before_the_checkpoint_are_saved_and_resumed(tmp_path):
    def go(epochs, **more):
        cbs = [_Doubles(), T.ModelCheckpoint(tmp_path / "ckpt")]
        return T.fit(mlp(seed=2), blobs(n=50), epochs=epochs, callbacks=cbs, **KW, **more)

    full = T.fit(mlp(seed=2), blobs(n=50), epochs=3, callbacks=[_Doubles()], **KW)
    go(2)  # the newest checkpoint (epoch 2) must hold its own epoch's value
    resumed = go(3, resume_from=tmp_path / "ckpt")
    assert resumed.epoch == full.epoch == [0, 1, 2]
    np.testing.assert_allclose(resumed["twice_loss"], full["twice_loss"], rtol=1e-6, atol=1e-7)
    doubled = 2.0 * np.asarray(resumed["loss"])
    np.testing.assert_allclose(resumed["twice_loss"], doubled, rtol=1e-6, atol=1e-7)


def _stop_restoring():
    # the training loss falls every epoch here, so its "best" in mode max is epoch 1
    return T.EarlyStopping("loss", mode="max", patience=10, restore_best_weights=True)


@pytest.mark.parametrize("kept", [None, 1])
def test_restore_best_weights_of_a_resumed_epoch_reads_its_checkpoint(tmp_path, kept):
    def go(epochs, **more):
        stop = _stop_restoring()
        cbs = [stop, T.ModelCheckpoint(tmp_path / "ckpt", max_to_keep=kept)]
        model = mlp(seed=2)
        T.fit(model, blobs(n=50), epochs=epochs, callbacks=cbs, **KW, **more)
        return leaves(model), stop

    full_model = mlp(seed=2)
    stop = _stop_restoring()
    T.fit(full_model, blobs(n=50), epochs=6, callbacks=[stop], **KW)
    assert stop.best_epoch == 0
    go(3)  # interrupted after epoch 3: the best, epoch 1 (1-based), is a resumed one
    if kept is None:  # its checkpoint is there: put back as the uninterrupted run does
        resumed, resumed_stop = go(6, resume_from=tmp_path / "ckpt")
        for a, b in zip(resumed, leaves(full_model), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    else:  # pruned (only epoch 3 kept): said, and the model keeps its last weights
        with pytest.warns(UserWarning, match="best epoch so far, 1, was trained before"):
            resumed, resumed_stop = go(6, resume_from=tmp_path / "ckpt")
        last = mlp(seed=2)
        T.fit(last, blobs(n=50), epochs=6, **KW)
        for a, b in zip(resumed, leaves(last), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert resumed_stop.best_epoch == 0
