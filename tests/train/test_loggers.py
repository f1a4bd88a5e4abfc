"""Tests for nnjax.train.loggers: CSV and TensorBoard logging (and their re-exports)."""

import csv
import importlib.util

import jax
import numpy as np
import pytest

import nnjax.train as T
from nnjax.train import callbacks, loggers
from tests.train._data import blobs, mlp

# tensorboardX is in the [train] extra (and [dev]); an image without it skips these
needs_tensorboardx = pytest.mark.skipif(
    importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX is not installed"
)

ONE = jax.devices()[:1]
KW = dict(loss="cross_entropy", batch_size=32, verbose=0, devices=ONE)


def test_loggers_are_re_exported_by_callbacks_and_train():
    assert callbacks.CSVLogger is loggers.CSVLogger is T.CSVLogger
    assert callbacks.TensorBoard is loggers.TensorBoard is T.TensorBoard
    assert issubclass(loggers.CSVLogger, callbacks.Callback)


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    history = T.fit(mlp(), blobs(), epochs=2, callbacks=[T.CSVLogger(path)], **KW)
    rows = list(csv.DictReader(open(path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    np.testing.assert_allclose(
        [float(r["loss"]) for r in rows], history["loss"], rtol=1e-6, atol=1e-6
    )
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.CSVLogger(path, append=True)], **KW)
    assert len(list(csv.DictReader(open(path)))) == 3


@needs_tensorboardx
def test_tensorboard_events_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = blobs()
    history = T.fit(
        mlp(), (x, y), epochs=2, validation_data=(x, y), callbacks=[T.TensorBoard(tmp_path)], **KW
    )
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert {"train/loss", "validation/loss", "train/accuracy"} <= set(events.Tags()["scalars"])
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1]
    np.testing.assert_allclose([e.value for e in loss], history["loss"], rtol=1e-6, atol=1e-6)


@needs_tensorboardx
def test_tensorboard_each_epoch_is_on_disk_when_it_ends(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seen = []

    class Read(T.Callback):  # after TensorBoard's on_epoch_end, the file open
        def on_epoch_end(self, epoch, logs=None):
            events = EventAccumulator(str(tmp_path))
            events.Reload()
            seen.append([e.step for e in events.Scalars("train/loss")])
            if epoch == 1:
                raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        T.fit(mlp(), blobs(), epochs=3, callbacks=[T.TensorBoard(tmp_path), Read()], **KW)
    assert seen == [[0], [0, 1]]  # before: [] and [0] (a background thread wrote them late)


@pytest.mark.parametrize("logger", ["csv", pytest.param("tensorboard", marks=needs_tensorboardx)])
def test_only_process_0_writes_logs(tmp_path, monkeypatch, logger):
    # every process of a multi-process run sees the same metrics: one file, not one each
    callback = T.CSVLogger(tmp_path / "h.csv") if logger == "csv" else T.TensorBoard(tmp_path)
    monkeypatch.setattr(jax, "process_index", lambda *a, **k: 1)
    T.fit(mlp(), blobs(), epochs=1, callbacks=[callback], **KW)
    assert list(tmp_path.iterdir()) == []


def test_csv_logger_creates_missing_parent_folders(tmp_path):
    path = tmp_path / "runs" / "mlp" / "history.csv"
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.CSVLogger(path)], **KW)
    with open(path, newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]


class AddFromEpoch1(T.Callback):
    """Adds ``extra`` to the logs from epoch 1 on (runs before the logger)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= 1:
            logs["extra"] = 10.0 * epoch


def test_csv_logger_adds_a_column_for_a_name_logged_later(tmp_path):
    path = tmp_path / "log.csv"
    T.fit(mlp(), blobs(), epochs=3, callbacks=[AddFromEpoch1(), T.CSVLogger(path)], **KW)
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "accuracy", "learning_rate", "extra"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"] and all(len(r) == 5 for r in rows)
    assert [r[-1] for r in rows[1:]] == ["", "10.0", "20.0"]

    # appending to it: the header decides the columns, and a new name still adds one
    class AddOther(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["other"] = 1.0

    logger = T.CSVLogger(path, append=True)
    T.fit(mlp(), blobs(), epochs=1, callbacks=[AddOther(), logger], **KW)
    rows = list(csv.reader(open(path)))
    assert rows[0][-2:] == ["extra", "other"] and [r[-1] for r in rows[1:]] == ["", "", "", "1.0"]
    assert rows[-1][-2] == ""  # no `extra` in the appended run


def test_csv_logger_separator(tmp_path):
    path = tmp_path / "log.tsv"
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.CSVLogger(path, separator="\t")], **KW)
    rows = list(csv.reader(open(path), delimiter="\t"))
    assert rows[0] == ["epoch", "loss", "accuracy", "learning_rate"] and len(rows) == 3
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.CSVLogger(path, separator="\t", append=True)],
          **KW)  # fmt: skip
    rows = list(csv.reader(open(path), delimiter="\t"))
    assert len(rows) == 4 and all(len(r) == 4 for r in rows)
    for bad in (";;", "", '"', "\n"):
        with pytest.raises(ValueError, match="`separator` must be one character"):
            T.CSVLogger(path, separator=bad)
    with pytest.raises(TypeError, match="`separator` must be a str, got int"):
        T.CSVLogger(path, separator=3)


@needs_tensorboardx
def test_tensorboard_closes_a_writer_a_failed_run_left_open(tmp_path):
    class Boom(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    board = T.TensorBoard(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        T.fit(mlp(), blobs(), epochs=2, callbacks=[board, Boom()], **KW)
    left, closed = board.writer, []
    assert left is not None  # on_train_end does not run after an exception
    close = left.close
    left.close = lambda: (closed.append(True), close())
    T.fit(mlp(), blobs(), epochs=1, callbacks=[board], **KW)
    assert closed == [True] and board.writer is None


def test_csv_logger_widening_a_linked_file_keeps_the_link(tmp_path):
    target = tmp_path / "elsewhere.csv"
    target.write_text("")
    link = tmp_path / "history.csv"
    link.symlink_to(target)
    T.fit(mlp(), blobs(), epochs=2, callbacks=[AddFromEpoch1(), T.CSVLogger(link)], **KW)
    assert link.is_symlink()
    rows = list(csv.reader(open(target)))
    assert rows[0][-1] == "extra" and [r[-1] for r in rows[1:]] == ["", "10.0"]
