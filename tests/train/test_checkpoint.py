"""Tests for Orbax checkpoints, resume and atomic saves (nnjax.train.checkpoint)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.io import _orbax, layout
from nnjax.nn import MLP
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(
    loss="cross_entropy",
    optimizer="adam",
    learning_rate=1e-2,
    batch_size=16,
    verbose=0,
    devices=ONE,
    seed=5,
    steps_per_dispatch=2,
)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Crash(Exception):
    pass


class CrashAfter(T.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Crash


def _uninterrupted(epochs=4):
    model = mlp(dropout=0.3)
    history = T.fit(model, blobs(), epochs=epochs, validation_data=blobs(n=20, seed=1), **KW)
    return leaves(model), history


def test_resume_after_crash_is_bitwise_identical(tmp_path):
    expected, full_history = _uninterrupted()
    model = mlp(dropout=0.3)
    with pytest.raises(Crash):
        T.fit(
            model,
            blobs(),
            epochs=4,
            validation_data=blobs(n=20, seed=1),
            callbacks=[T.ModelCheckpoint(tmp_path), CrashAfter(1)],
            **KW,
        )
    assert T.latest_epoch(tmp_path) == 1
    resumed = mlp(dropout=0.3)
    history = T.fit(
        resumed,
        blobs(),
        epochs=4,
        validation_data=blobs(n=20, seed=1),
        resume_from=tmp_path,
        callbacks=[T.ModelCheckpoint(tmp_path)],
        **KW,
    )
    for a, b in zip(expected, leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    assert history.epoch == [0, 1, 2, 3]
    np.testing.assert_array_equal(history["loss"], full_history["loss"])


def test_resume_with_another_seed_is_refused(tmp_path):
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    with pytest.raises(ValueError, match="seed=5"):
        T.fit(mlp(), blobs(), epochs=2, resume_from=tmp_path, **{**KW, "seed": 6})


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_resume_after_sigkill(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
        sys.path.insert(0, {ROOT!r})
        import jax
        import nnjax.train as T
        from tests.train._data import blobs, mlp
        from tests.train.test_checkpoint import KW

        class Kill(T.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    os.kill(os.getpid(), signal.SIGKILL)

        T.fit(mlp(dropout=0.3), blobs(), epochs=4, validation_data=blobs(n=20, seed=1),
              callbacks=[T.ModelCheckpoint({str(tmp_path)!r}), Kill()], **KW)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert T.latest_epoch(tmp_path) == 1
    resumed = mlp(dropout=0.3)
    T.fit(
        resumed, blobs(), epochs=4, validation_data=blobs(n=20, seed=1), resume_from=tmp_path, **KW
    )
    for a, b in zip(_uninterrupted()[0], leaves(resumed)):
        np.testing.assert_array_equal(a, b)


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    class FailingSecondSave(T.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # the JSON fails after the arrays were written
                monkeypatch.setattr(layout, "write_json", lambda path, data: 1 / 0)

    saver = T.ModelCheckpoint(tmp_path)
    with pytest.raises(ZeroDivisionError):
        T.fit(mlp(), blobs(), epochs=3, callbacks=[FailingSecondSave(), saver], **KW)
    monkeypatch.undo()
    assert T.latest_epoch(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # no temporary folder left
    model = mlp()
    meta = T.load_checkpoint(tmp_path, model)
    assert meta["epoch"] == 0 and meta["history"]["epoch"] == [0]
    assert all(np.isfinite(a).all() for a in leaves(model))


def test_failed_write_inside_orbax_keeps_previous(tmp_path, monkeypatch):
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    real = _orbax.write

    def unwritable_opt_state(path, tree):
        if path.name == "opt_state":  # orbax fails writing adam's state
            tree = {**tree, "bad": object()}
        real(path, tree)

    monkeypatch.setattr(_orbax, "write", unwritable_opt_state)
    with pytest.raises((TypeError, ValueError)):
        T.fit(
            mlp(),
            blobs(),
            epochs=3,
            resume_from=tmp_path,
            callbacks=[T.ModelCheckpoint(tmp_path)],
            **KW,
        )
    monkeypatch.undo()
    assert T.latest_epoch(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # the half-written save is gone
    T.load_checkpoint(tmp_path, mlp())


def test_nan_stops_training_and_last_good_checkpoint_loads(tmp_path):
    class Poison(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                params = jax.tree.map(lambda a: a * jnp.nan, self.loop.state.params)
                self.loop.restore_weights(params, self.loop.state.rest)

    with pytest.raises(T.NonFiniteLossError, match="in epoch 3, update 1 of the epoch") as err:
        T.fit(mlp(), blobs(), epochs=4, callbacks=[T.ModelCheckpoint(tmp_path), Poison()], **KW)
    assert err.value.epoch == 2
    model = mlp()
    assert T.load_checkpoint(tmp_path, model)["epoch"] == 1
    assert all(np.isfinite(a).all() for a in leaves(model))


def test_save_best_only_keeps_the_best_epoch(tmp_path):
    x, y = blobs()
    saver = T.ModelCheckpoint(tmp_path, monitor="val_loss", save_best_only=True)
    history = T.fit(mlp(), (x, y), epochs=3, validation_data=(x, y), callbacks=[saver], **KW)
    best = int(np.argmin(history["val_loss"]))
    assert T.latest_epoch(tmp_path) == best
    model = mlp()
    T.load_checkpoint(tmp_path, model)
    logs = T.evaluate(model, (x, y), loss="cross_entropy", devices=ONE)
    np.testing.assert_allclose(logs["loss"], history["val_loss"][best], rtol=1e-5, atol=1e-5)


def test_save_best_only_needs_monitor(tmp_path):
    with pytest.raises(ValueError, match="monitor"):
        T.ModelCheckpoint(tmp_path, save_best_only=True)


def test_mode_is_checked_even_without_a_monitor(tmp_path):
    with pytest.raises(ValueError, match="ModelCheckpoint: `mode` must be 'min', 'max' or 'auto'"):
        T.ModelCheckpoint(tmp_path, mode="best")
    with pytest.raises(ValueError, match="ModelCheckpoint: `mode`"):
        T.ModelCheckpoint(tmp_path, monitor="val_loss", mode="best")


def test_save_best_only_follows_mode_epoch_by_epoch(tmp_path):
    class Scripted(T.Callback):  # runs before the checkpoint: it sees these values
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [0.5, 0.4, 0.7, 0.7, 0.6, 0.9][epoch]

    saver = T.ModelCheckpoint(
        tmp_path, monitor="val_loss", mode="max", save_best_only=True, max_to_keep=None
    )
    x, y = blobs()
    T.fit(mlp(), (x, y), epochs=6, validation_data=(x, y), callbacks=[Scripted(), saver], **KW)
    # saved after epochs 0, 2 and 5 (1-based step folders); 0.7 again is no improvement
    assert sorted(os.listdir(tmp_path), key=int) == ["1", "3", "6"]
    assert saver.monitor.best == 0.9


def test_step_folders_count_epochs_from_one_and_load_rebuilds_the_model(tmp_path):
    import nnjax.io

    model = mlp(dropout=0.3)
    T.fit(model, blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path, max_to_keep=None)], **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]
    assert T.latest_epoch(tmp_path) == 1
    rebuilt = nnjax.io.load(tmp_path)
    for a, b in zip(leaves(model), leaves(rebuilt)):
        np.testing.assert_array_equal(a, b)


def test_resume_with_another_optimizer_says_so(tmp_path):
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    with pytest.raises(ValueError, match=r"another optimizer \(state \w*/?ScaleByAdamState"):
        T.fit(mlp(), blobs(), epochs=2, resume_from=tmp_path, **{**KW, "optimizer": "sgd"})


def test_fallback_restores_the_newest_intact_checkpoint(tmp_path):
    import nnjax.io

    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    (tmp_path / "2" / "nnjax.json").write_text("{garbled")
    model = mlp()
    with pytest.raises(nnjax.io.CheckpointError, match=r"2/nnjax.json: garbled JSON"):
        T.load_checkpoint(tmp_path, model)
    with pytest.warns(nnjax.io.CheckpointFallbackWarning, match=r"loaded .*/1 instead"):
        meta = T.load_checkpoint(tmp_path, model, fallback=True)
    assert meta["epoch"] == 0


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_resume_from_a_first_layout_checkpoint(tmp_path):
    import shutil

    shutil.copytree(
        os.path.join(ROOT, "tests", "io", "fixtures", "v0_checkpoint", "run"), tmp_path / "run"
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    model = MLP(2, (3,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    kw = {**KW, "seed": 3, "batch_size": 8}
    history = T.fit(
        model,
        (x, y),
        epochs=3,
        resume_from=tmp_path / "run",
        callbacks=[T.ModelCheckpoint(tmp_path / "run")],
        **kw,
    )
    assert history.epoch == [0, 1, 2]
    assert (
        T.latest_epoch(tmp_path / "run") == 2 and (tmp_path / "run" / "3" / "nnjax.json").is_file()
    )


def test_resumed_save_best_only_remembers_the_best_value(tmp_path):
    x, y = blobs()

    def saver():  # the highest validation loss is the "best": epoch 1 stays the best
        return T.ModelCheckpoint(tmp_path, monitor="val_loss", mode="max", save_best_only=True)

    T.fit(mlp(), (x, y), epochs=1, validation_data=(x, y), callbacks=[saver()], **KW)
    T.fit(
        mlp(),
        (x, y),
        epochs=3,
        validation_data=(x, y),
        callbacks=[saver()],
        resume_from=tmp_path,
        **KW,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["1"]


def test_a_new_run_refuses_a_folder_with_checkpoints_before_training(tmp_path):
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    before = sorted(p.name for p in tmp_path.iterdir())
    model = mlp()
    start = leaves(model)
    with pytest.raises(FileExistsError, match=r"already holds checkpoints \(epochs 1\.\.2\)"):
        T.fit(model, blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing deleted
    for a, b in zip(start, leaves(model)):  # refused before training: the model is untouched
        np.testing.assert_array_equal(a, b)


def test_overwrite_replaces_the_old_run_only_when_the_new_one_saves(tmp_path):
    T.fit(mlp(), blobs(), epochs=3, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    with pytest.raises(Crash):  # fails before its first save: the old run is kept
        T.fit(
            mlp(),
            blobs(),
            epochs=2,
            callbacks=[CrashAfter(0), T.ModelCheckpoint(tmp_path, overwrite=True)],
            **KW,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2", "3"]
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path, overwrite=True)], **KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # epochs 2, 3 of the old run gone
    assert T.load_checkpoint(tmp_path, mlp())["history"]["epoch"] == [0]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_max_to_keep_must_be_positive(tmp_path, bad):
    with pytest.raises(ValueError, match=rf"`max_to_keep` must be an int >= 1 or None.*{bad!r}"):
        T.ModelCheckpoint(tmp_path, max_to_keep=bad)


def test_a_full_disk_is_one_line_and_leaves_the_run_recoverable(tmp_path, monkeypatch):
    import errno

    class DiskFullAt(T.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:

                def full(path, data):
                    raise OSError(errno.ENOSPC, "No space left on device")

                monkeypatch.setattr(layout, "write_json", full)

    model = mlp()
    with pytest.raises(OSError, match=r"could not save epoch 2 to .*2: No space left on device"):
        T.fit(model, blobs(), epochs=3, callbacks=[DiskFullAt(), T.ModelCheckpoint(tmp_path)], **KW)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # nothing half-written left
    T.load_checkpoint(tmp_path, mlp())  # the earlier checkpoint loads
    assert all(np.isfinite(a).all() for a in leaves(model))  # the model is usable ...
    T.fit(model, blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path / "elsewhere")], **KW)
    assert T.latest_epoch(tmp_path / "elsewhere") == 0  # ... and can be saved elsewhere


def test_fit_resumes_from_the_newest_intact_checkpoint_with_fallback(tmp_path):
    import nnjax.io

    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    (tmp_path / "2" / "nnjax.json").write_text("{garbled")
    with pytest.raises(nnjax.io.CheckpointError, match=r"2/nnjax.json: garbled JSON"):
        T.fit(mlp(), blobs(), epochs=3, resume_from=tmp_path, **KW)
    reference = mlp()
    T.fit(reference, blobs(), epochs=3, **KW)
    model = mlp()
    with pytest.warns(nnjax.io.CheckpointFallbackWarning, match=r"loaded .*/1 instead"):
        history = T.fit(model, blobs(), epochs=3, resume_from=tmp_path, fallback=True, **KW)
    assert len(history.history["loss"]) == 3  # epoch 0 restored, epochs 1 and 2 trained
    for got, want in zip(leaves(model), leaves(reference)):
        np.testing.assert_array_equal(got, want)  # ends where the uninterrupted run ends


def test_a_resumed_fit_saves_again_over_a_checkpoint_that_lost_its_json(tmp_path):
    import nnjax.io

    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    (tmp_path / "2" / "nnjax.json").unlink()  # the newest checkpoint lost its record
    model = mlp()
    with pytest.warns(nnjax.io.CheckpointFallbackWarning):
        T.fit(
            model, blobs(), epochs=3, resume_from=tmp_path, fallback=True,
            callbacks=[T.ModelCheckpoint(tmp_path)], **KW,
        )  # fmt: skip
    assert T.latest_epoch(tmp_path) == 2  # epochs 2 and 3 saved, over the damaged one
    for a, b in zip(leaves(model), leaves(nnjax.io.load(tmp_path)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_save_refused_over_a_users_folder_says_why_without_an_errno(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "notes.txt").write_text("mine")
    with pytest.raises(
        OSError, match=r"could not save epoch 1 to .*1: .*not an nnjax checkpoint"
    ) as info:
        T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    assert "Errno None" not in str(info.value)
    assert (tmp_path / "1" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("template", ["model-{epoch:02d}-{val_loss:.2f}.keras", "ckpt/{epoch}"])
def test_a_keras_filepath_template_is_refused(tmp_path, template):
    with pytest.raises(ValueError, match=r"must be a folder \(step .* filepath template .*epoch"):
        T.ModelCheckpoint(tmp_path / template)
    assert list(tmp_path.iterdir()) == []
