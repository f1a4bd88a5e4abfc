"""Tests for nnjax.train.loggers: CSV and TensorBoard logging (and their re-exports)."""

import csv

import jax
import numpy as np
import pytest

import nnjax.train as T
from nnjax.train import callbacks, loggers
from tests.train._data import blobs, mlp

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


@pytest.mark.parametrize("logger", ["csv", "tensorboard"])
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
