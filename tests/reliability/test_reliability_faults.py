"""Faults during training: a kill right after a save, full disks, damaged checkpoints.

Nothing is lost: after an interruption at any epoch boundary the CSV log holds every
epoch exactly once; a failed save leaves the earlier checkpoints, no half-written step
and a model that can be saved elsewhere; a damaged newest checkpoint can be skipped.
"""

import csv
import errno
import os

import jax
import numpy as np
import pytest

import nnjax
import nnjax.train as T
from nnjax.io import _orbax
from nnjax.io.errors import CheckpointError, CheckpointFallbackWarning
from nnjax.train import optimizers, resume, step
from nnjax.train.state import TrainState
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(
    loss="cross_entropy", learning_rate=1e-2, batch_size=16, verbose=0, devices=ONE, seed=3,
    steps_per_dispatch=2,
)  # fmt: skip
DATA = blobs(n=48)


class Killed(Exception):
    """Stands for SIGKILL: nothing after it runs."""


class KillAfter(T.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "earlier",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # slow: CI's slow step runs it
    ids=["new-file", "appended-to-a-run"],
)
@pytest.mark.parametrize(
    ("kill_after", "csv_first"),
    [(0, False), (1, False), (1, True)],
    ids=["after-first-save", "after-second-save", "after-csv-row-before-save"],
)
def test_the_csv_holds_every_epoch_once_after_a_kill_and_resume(
    tmp_path, kill_after, csv_first, earlier
):
    ckpt, log = tmp_path / "ckpt", tmp_path / "history.csv"
    before = []  # an earlier run's rows in the file (append=True): kept through the resume
    if earlier:
        T.fit(
            mlp(), DATA, epochs=3, callbacks=[T.CSVLogger(log, first_epoch=1)], **{**KW, "seed": 4}
        )
        before = _rows(log)
    saver = T.ModelCheckpoint(ckpt, max_to_keep=1)
    logger = T.CSVLogger(log, first_epoch=1, append=earlier)
    # csv_first: the row is written, then the kill comes before the checkpoint
    order = (
        [logger, KillAfter(kill_after), saver]
        if csv_first
        else [saver, KillAfter(kill_after), logger]
    )
    with pytest.raises(Killed):
        T.fit(mlp(), DATA, epochs=4, callbacks=order, **KW)
    saved = T.latest_epoch(ckpt)
    assert saved == (kill_after - 1 if csv_first else kill_after)
    callbacks = [
        T.ModelCheckpoint(ckpt, max_to_keep=1),
        T.CSVLogger(log, append=True, first_epoch=1),
    ]
    history = T.fit(mlp(), DATA, epochs=4, resume_from=ckpt, callbacks=callbacks, **KW)
    rows = _rows(log)
    assert rows[: len(before)] == before
    rows = rows[len(before) :]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # 1-based, each once
    np.testing.assert_allclose(
        [float(r["loss"]) for r in rows], history.history["loss"], rtol=1e-6, atol=1e-7
    )


def test_csv_logger_never_removes_a_file(tmp_path, monkeypatch):
    log = tmp_path / "history.csv"
    log.write_text("a user's data\n")

    def no_remove(path, *a, **k):
        raise AssertionError(f"os.remove({path}) called")

    monkeypatch.setattr(os, "remove", no_remove)
    monkeypatch.setattr(os, "unlink", no_remove)
    T.fit(mlp(), DATA, epochs=1, callbacks=[T.CSVLogger(log)], **KW)
    assert [r["epoch"] for r in _rows(log)] == ["0"]


def test_csv_logger_writes_through_a_link_and_leaves_it_a_link(tmp_path):
    # a path that is not a plain file the logger created (a link, a device) is opened,
    # never removed: a removed link would be replaced by a plain file (never test this
    # with os.devnull: a logger that removes files would replace /dev/null)
    target = tmp_path / "elsewhere.csv"
    target.write_text("")
    link = tmp_path / "history.csv"
    link.symlink_to(target)
    T.fit(mlp(), DATA, epochs=1, callbacks=[T.CSVLogger(link)], **KW)
    assert link.is_symlink()
    assert [r["epoch"] for r in _rows(target)] == ["0"]


def test_csv_logger_into_a_folder_is_one_line_before_training(tmp_path):
    model = mlp()
    start = leaves(model)
    with pytest.raises(OSError, match=rf"CSVLogger: cannot write {tmp_path}"):
        T.fit(model, DATA, epochs=1, callbacks=[T.CSVLogger(tmp_path)], **KW)
    for a, b in zip(start, leaves(model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert tmp_path.is_dir()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES], ids=["disk-full", "permission"])
def test_a_failed_save_is_one_line_and_the_run_recovers(tmp_path, monkeypatch, error):
    ckpt = tmp_path / "ckpt"
    real = _orbax.write

    class FailFromEpoch1(T.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:

                def fail(path, tree):
                    raise OSError(error, os.strerror(error))

                monkeypatch.setattr(_orbax, "write", fail)

    model = mlp()
    with pytest.raises(OSError) as info:
        T.fit(model, DATA, epochs=3, callbacks=[FailFromEpoch1(), T.ModelCheckpoint(ckpt)], **KW)
    message = str(info.value)
    assert f"{ckpt}/2" in message and os.strerror(error) in message and "\n" not in message
    monkeypatch.setattr(_orbax, "write", real)
    assert sorted(p.name for p in ckpt.iterdir()) == ["1"]  # no half-written step
    trained = leaves(model)
    nnjax.save(model, tmp_path / "elsewhere")  # the training state was kept in memory
    for a, b in zip(trained, leaves(nnjax.load(tmp_path / "elsewhere")), strict=True):
        np.testing.assert_array_equal(a, b)
    T.fit(mlp(), DATA, epochs=3, resume_from=ckpt, callbacks=[T.ModelCheckpoint(ckpt)], **KW)
    assert T.latest_epoch(ckpt) == 2  # the next saves succeed


def test_overwrite_keeps_the_old_run_when_the_first_new_save_fails(tmp_path, monkeypatch):
    T.fit(mlp(), DATA, epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)

    def full(path, tree):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_orbax, "write", full)
    with pytest.raises(OSError, match="No space left"):
        T.fit(mlp(), DATA, epochs=1, callbacks=[T.ModelCheckpoint(tmp_path, overwrite=True)], **KW)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]
    assert T.load_checkpoint(tmp_path, mlp())["epoch"] == 1


def _fresh_state(model):
    _, params, rest = step.split_model(model)
    tx = optimizers.get_optimizer("adam")
    return TrainState(params, optimizers.init_state(tx, params, learning_rate=1e-2), rest)


@pytest.mark.slow
def test_resume_state_falls_back_from_a_damaged_newest_checkpoint(tmp_path):
    T.fit(mlp(), DATA, epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    (tmp_path / "2" / "nnjax.json").write_text("")  # the disk lost the newest metadata
    with pytest.raises(CheckpointError, match=r"2/nnjax.json: empty"):
        resume.resume_state(tmp_path, _fresh_state(mlp()), seed=3)
    with pytest.warns(CheckpointFallbackWarning, match=r"loaded .*1 instead"):
        _, history, initial_epoch, _ = resume.resume_state(
            tmp_path, _fresh_state(mlp()), seed=3, fallback=True
        )
    assert initial_epoch == 1 and history.epoch == [0]


def test_nan_labels_are_named_before_training():
    x, y = DATA
    targets = np.eye(3, dtype=np.float32)[y]
    targets[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"labels y hold NaN or inf \(example 7"):
        T.fit(mlp(), (x, targets), epochs=1, **KW)


def test_nan_inputs_in_a_memmap_are_not_blamed_on_the_learning_rate(tmp_path):
    x, y = DATA
    x = x.copy()
    x[5, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(FloatingPointError) as info:
        T.fit(mlp(), (xm, y), epochs=1, **KW)
    assert "input" in str(info.value) and "NaN" in str(info.value)
