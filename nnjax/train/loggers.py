"""The logging callbacks for :func:`nnjax.train.fit`: :class:`CSVLogger`, :class:`TensorBoard`.

Both are re-exported by :mod:`nnjax.train.callbacks` (and :mod:`nnjax.train`).

Example:
  >>> import os, tempfile
  >>> folder = tempfile.mkdtemp()
  >>> callbacks = [CSVLogger(os.path.join(folder, "history.csv")),
  ...              TensorBoard(os.path.join(folder, "logs"))]
  >>> [type(cb).__name__ for cb in callbacks]
  ['CSVLogger', 'TensorBoard']
"""

from __future__ import annotations

import csv
import importlib.util
import os
import time
from typing import Any

import jax

from nnjax._checks import check_static_bool
from nnjax.io.layout import check_path
from nnjax.train.callbacks import Callback, Logs


class CSVLogger(Callback):
    """Writes one row per epoch (``epoch`` and every logged metric) to a CSV file.

    The columns are the names logged in the first epoch; a name first logged later (by
    a callback that adds to ``logs``, say) adds a column, and the rows before it get an
    empty cell there (the file is rewritten; a pipe or device keeps its columns). The
    file is opened for writing the ordinary way (truncated, never deleted, so a
    device or a pipe at ``filename`` works). A resumed run (``fit(resume_from=...)``)
    rewrites the file from the restored history first, so after any interruption
    (even a kill between a checkpoint and the CSV row) it holds every epoch exactly
    once. Only JAX process 0 writes.

    Args:
      filename: the file to write (``~`` expanded); missing parent folders are created.
      separator: the one character between cells (Keras' ``separator``).
      append: keep the rows of an existing file (its header decides the columns, plus
        any new names) instead of starting a new file; a resumed run rewrites only its
        own rows.
      first_epoch: the number written for fit's epoch 0: ``0`` (fit's index, as
        Keras writes it) or ``1`` (as the console and ``nnjax train``'s
        ``history.json`` count).

    Raises:
      TypeError: ``separator`` is not a ``str``.
      ValueError: ``separator`` is not one character (or is a quote or line break), or
        ``first_epoch`` is neither 0 nor 1.
      OSError: at the start of training, when ``filename`` cannot be opened for
        writing (a folder, no permission): one line naming it.

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
      >>> _ = train.fit(model, (x, y), loss="cross_entropy", epochs=2, batch_size=8,
      ...               verbose=0, callbacks=[CSVLogger(path)])
      >>> with open(path) as f:
      ...     rows = f.read().splitlines()
      >>> rows[0], len(rows)
      ('epoch,loss,accuracy,learning_rate', 3)
    """

    def __init__(
        self,
        filename: str | os.PathLike,
        *,
        separator: str = ",",
        append: bool = False,
        first_epoch: int = 0,
    ) -> None:
        if first_epoch not in (0, 1) or isinstance(first_epoch, bool):
            raise ValueError(f"CSVLogger: `first_epoch` must be 0 or 1, got {first_epoch!r}")
        if not isinstance(separator, str):
            raise TypeError(f"CSVLogger: `separator` must be a str, got {type(separator).__name__}")
        if len(separator) != 1 or separator in '"\r\n':
            raise ValueError(
                "CSVLogger: `separator` must be one character other than a quote or a line "
                f"break, got {separator!r}"
            )
        check_path("CSVLogger", "filename", filename)
        self.filename = os.path.expanduser(os.fspath(filename))
        self.append = check_static_bool("CSVLogger", "append", append)
        self.first_epoch = first_epoch
        self.separator = separator
        self._keys: list[str] | None = None

    def output_paths(self) -> tuple[str, ...]:
        """``(filename,)``: no other callback of the run may write this file."""
        return (self.filename,)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Starts the file, or rewrites the restored history's rows when resuming."""
        self._keys = None
        if jax.process_index() != 0:
            return
        history = getattr(self.loop, "history", None)
        restored = list(getattr(history, "epoch", ()) or ())
        if restored:
            self._rewrite(history)
        elif self.append and os.path.isfile(self.filename):
            self._keys = self._header()
        else:
            self._open("w").close()

    def _open(self, mode: str):
        try:
            os.makedirs(os.path.dirname(self.filename) or ".", exist_ok=True)
            return open(self.filename, mode, newline="")
        except OSError as err:
            raise self._cannot_write(err) from None

    def _cannot_write(self, err: OSError) -> OSError:
        """One line naming the file, with the errno of ``err``."""
        return OSError(err.errno, f"CSVLogger: cannot write {self.filename}: {err.strerror or err}")

    def _csv(self, f: Any) -> Any:
        return csv.writer(f, delimiter=self.separator)

    def _rewrite(self, history: Any) -> None:
        """The header and one row per restored epoch (atomically for a regular file).

        With ``append``, the rows of earlier runs in the file are kept: those before the
        resumed run's first row (its restored first epoch, as this logger wrote it).
        """
        metrics = dict(history.history)
        header = self._header() or []
        self._keys = [*header, *(k for k in metrics if k not in header)]
        rows = [
            [int(e) + self.first_epoch, *(_at(metrics.get(k), i) for k in self._keys)]
            for i, e in enumerate(history.epoch)
        ]
        width = len(self._keys) + 1
        earlier = [r + [""] * (width - len(r)) for r in self._earlier_rows(rows)]
        self._write_all([["epoch", *self._keys], *earlier, *rows])

    def _earlier_rows(self, run: list[list[Any]]) -> list[list[str]]:
        """With ``append``: the file's rows before those of the resumed ``run``.

        The run's rows start at the last row of its first epoch, if they read as ``run``
        (those of its epochs the file holds); else the run wrote none (it was killed
        between a checkpoint and its row) and every row is an earlier run's.
        """
        if not (self.append and os.path.isfile(self.filename)):
            return []
        with open(self.filename, newline="") as f:
            rows = list(csv.reader(f, delimiter=self.separator))[1:]
        cells = [[str(c) for c in r] for r in run]
        starts = [i for i, r in enumerate(rows) if r[:1] == cells[0][:1]]
        ours = starts and all(r == c[: len(r)] for r, c in zip(rows[starts[-1] :], cells))
        return rows[: starts[-1]] if ours else rows

    def _widen(self, names: list[str]) -> None:
        """Adds columns ``names`` (empty in the rows so far); a pipe keeps its columns."""
        if not names or self._keys is None or not os.path.isfile(self.filename):
            return
        with open(self.filename, newline="") as f:
            rows = list(csv.reader(f, delimiter=self.separator))
        self._keys = [*self._keys, *names]
        width = len(self._keys) + 1
        rows = [["epoch", *self._keys]] + [r + [""] * (width - len(r)) for r in rows[1:]]
        self._write_all(rows)

    def _write_all(self, rows: list[list[Any]]) -> None:
        """Replaces the file's content by ``rows`` (atomically for a regular file).

        A link stays a link: the file it points to is replaced.
        """
        if not os.path.isfile(self.filename):
            with self._open("w") as f:
                self._csv(f).writerows(rows)
            return
        target = os.path.realpath(self.filename)
        tmp = f"{target}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", newline="") as f:
                self._csv(f).writerows(rows)
            os.replace(tmp, target)
        except OSError as err:
            if os.path.exists(tmp):
                os.remove(tmp)  # our own temporary file
            raise self._cannot_write(err) from None

    def _header(self) -> list[str] | None:
        if not (self.append and os.path.isfile(self.filename)):
            return None
        with open(self.filename, newline="") as f:
            return next(csv.reader(f, delimiter=self.separator), ["epoch"])[1:] or None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Appends the epoch's row (and the header on the first row, or new columns)."""
        if jax.process_index() != 0:
            return
        logs = dict(logs or {})
        new = self._keys is None
        if new:
            self._keys = list(logs)
        else:
            self._widen([k for k in logs if k not in (self._keys or ())])
        keys = self._keys or []
        with self._open("a") as f:
            writer = self._csv(f)
            if new:
                writer.writerow(["epoch", *keys])
            writer.writerow([epoch + self.first_epoch, *(logs.get(k, "") for k in keys)])


def _at(values: Any, i: int) -> Any:
    """``values[i]``, or an empty cell when the metric was not logged then."""
    return values[i] if values is not None and i < len(values) else ""


class TensorBoard(Callback):
    """Writes every epoch metric as a TensorBoard scalar (``tensorboardX`` event files).

    Train metrics go under ``train/<name>``, validation metrics (logged as
    ``val_<name>``) under ``validation/<name>``, with fit's 0-based epoch as the step;
    each value is written as a Python ``float``. In a multi-process run only process 0
    writes (the metrics are the same in every process). The event file is opened when
    training starts and closed when training ends; each epoch's scalars are written
    and flushed to it before the next epoch starts (no background thread: an
    interrupted run's file holds every finished epoch). Needs the ``tensorboardX``
    package (in the ``nnjax[train]`` extra); the constructor does not import it.

    Args:
      log_dir: the folder of the event files (a ``str`` or path, ``~`` expanded;
        created when missing). Point ``tensorboard --logdir`` at it, or at a folder above it to
        compare runs.

    Attributes:
      log_dir: ``log_dir`` as a ``str``, ``~`` expanded.
      writer: the event file while training (``add_scalar(tag, value, step)``,
        ``flush()``, ``close()``), ``None`` before and after (and on processes other
        than 0).

    Raises:
      ImportError: at the start of training, when ``tensorboardX`` is not installed.

    Example:
      >>> import os, tempfile
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> logs = tempfile.mkdtemp()
      >>> board = TensorBoard(logs)
      >>> _ = train.fit(model, (x, y), loss="cross_entropy", epochs=2, batch_size=8,
      ...               verbose=0, callbacks=[board])
      >>> [name.startswith("events.out.tfevents") for name in os.listdir(logs)]
      [True]
      >>> board.writer is None  # closed at the end of training
      True
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        check_path("TensorBoard", "log_dir", log_dir)
        self.log_dir = os.path.expanduser(os.fspath(log_dir))
        self.writer: _EventFile | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Opens the ``tensorboardX`` event writer (closing one a failed run left open)."""
        self.on_train_end()
        if importlib.util.find_spec("tensorboardX") is None:  # pragma: no cover
            raise ImportError("TensorBoard logging needs tensorboardX: pip install 'nnjax[train]'")
        if jax.process_index() == 0:  # one event file per run, as CSVLogger's one file
            self.writer = _EventFile(self.log_dir)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Writes the epoch's metrics as scalars and flushes (process 0 only)."""
        if self.writer is None:
            return
        for name, value in (logs or {}).items():
            tag = f"validation/{name[4:]}" if name.startswith("val_") else f"train/{name}"
            self.writer.add_scalar(tag, float(value), epoch)
        self.writer.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Closes the event writer."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _EventFile:
    """A TensorBoard event file written in the caller's thread: ``flush`` puts it on disk.

    ``tensorboardX.SummaryWriter`` hands events to a background thread, and its
    ``flush`` does not wait for them: the newest epoch reached the file one epoch (or
    up to two minutes) late, and never if the process died first.
    """

    def __init__(self, log_dir: str) -> None:
        from tensorboardX.event_file_writer import EventsWriter

        os.makedirs(log_dir, exist_ok=True)
        self._events = EventsWriter(os.path.join(log_dir, "events"))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Appends one scalar event (``tag``, ``value``) at ``step``."""
        from tensorboardX import summary
        from tensorboardX.proto import event_pb2

        scalar = summary.scalar(tag, float(value))
        self._events.write_event(event_pb2.Event(wall_time=time.time(), step=step, summary=scalar))

    def flush(self) -> None:
        """Writes what was added to the file."""
        self._events.flush()

    def close(self) -> None:
        """Flushes and closes the file."""
        self._events.close()


__all__ = ["CSVLogger", "TensorBoard"]
