"""Progress output of fit: a bar with the running loss on a terminal, lines elsewhere."""

import sys

import jax
import numpy as np
import pytest

import nnjax.train as T
from nnjax import losses
from nnjax.train import progress
from tests.train._data import blobs, mlp

ONE = jax.devices()[:1]


def fresh_loss(logits, labels, reduction="mean"):
    """A loss no other test uses, so the step compiles here."""
    return losses.cross_entropy(logits, labels, reduction=reduction)


def test_pipes_get_a_compile_line_and_one_line_per_epoch(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    x, y = blobs(n=50)
    T.fit(mlp(seed=5), (x, y), loss=fresh_loss, epochs=2, batch_size=16,
          validation_data=(x, y), metrics=["accuracy", "f1_macro"], devices=ONE)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2: compiling the training step..."
    assert lines[1].startswith("Epoch 1/2: compiled in ") and lines[1].endswith(" s")
    epochs = [line for line in lines if " - loss: " in line]
    assert [line.split(" - ")[0] for line in epochs] == ["Epoch 1/2", "Epoch 2/2"]
    assert all("val_f1_macro: " in line and "learning_rate: " in line for line in epochs)


def test_the_bar_counts_every_step_and_shows_the_running_loss(capsys, monkeypatch):
    pytest.importorskip("tqdm")  # the bar is the progress extra's
    monkeypatch.setattr(progress, "REFRESH_S", 0.0)
    bars = []
    original = progress.EpochProgress.close

    def spy(self, logs, seconds=None):
        bars.append((self.bar.n, self.bar.total, self.bar.postfix))
        original(self, logs, seconds)

    monkeypatch.setattr(progress.EpochProgress, "close", spy)
    x, y = blobs(n=100)  # 7 batches of 16 (one padded): dispatches of 4 and 3
    T.fit(mlp(), (x, y), loss="cross_entropy", epochs=1, batch_size=16, verbose=1,
          steps_per_dispatch=4, devices=ONE)  # fmt: skip
    assert bars[0][:2] == (7, 7)  # no stall before the remainder
    assert bars[0][2].startswith("loss ")
    assert "Epoch 1/1 - " in capsys.readouterr().out


def test_the_finished_bar_shows_the_epochs_loss_not_a_stale_running_one(monkeypatch):
    pytest.importorskip("tqdm")  # the bar is the progress extra's
    shown = []
    original = progress.EpochProgress.close

    def spy(self, logs, seconds=None):
        self.bar.set_postfix_str("loss 9.9999", refresh=False)  # a running loss, stale
        original(self, logs, seconds)
        shown.append((self.bar.postfix, logs["loss"]))

    monkeypatch.setattr(progress.EpochProgress, "close", spy)
    T.fit(mlp(), blobs(), loss="cross_entropy", epochs=1, verbose=1, devices=ONE)
    postfix, loss = shown[0]
    assert postfix == f"loss {loss:.4f}"


def test_without_tqdm_the_bar_falls_back_to_lines(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import raises ImportError
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert progress.resolve_verbose("auto") == 2
    assert progress.resolve_verbose(1) == 2
    T.fit(mlp(), blobs(), loss="cross_entropy", epochs=1, verbose=1, devices=ONE)
    assert "Epoch 1/1 - " in capsys.readouterr().out


def test_format_logs_and_verbose_values():
    assert progress.format_logs({"loss": 0.5, "lr": 1e-5}) == "loss: 0.5000 - lr: 1.0000e-05"
    with pytest.raises(ValueError, match="verbose"):
        progress.resolve_verbose(3)
    bar = progress.EpochProgress(epoch=0, epochs=1, steps=None, verbose=0)
    bar.update(3, np.float32(1.0))
    bar.close({"loss": 1.0})


def test_only_process_0_prints(monkeypatch):
    assert progress.resolve_verbose(2) == 2
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert progress.resolve_verbose(2) == 0 and progress.resolve_verbose("auto") == 0
    with pytest.raises(ValueError, match="verbose must be"):
        progress.resolve_verbose(3)  # still checked on every process
