"""Tests for Orbax checkpoints, resume and atomic saves (nnjax.train.checkpoint)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import nnjax.train as T
from nnjax.train import checkpoint
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


def test_flatten_roundtrip_keeps_typed_keys():
    tree = {"k": jax.random.key(3), "w": jnp.arange(3.0)}
    arrays, paths = checkpoint.flatten_for_save(tree)
    back = checkpoint.unflatten_like(tree, arrays, paths)
    assert jax.random.key_impl(back["k"]) == jax.random.key_impl(tree["k"])
    np.testing.assert_array_equal(jax.random.key_data(back["k"]), jax.random.key_data(tree["k"]))
    with pytest.raises(ValueError, match=r"\['w'\] has shape \(3,\)"):
        checkpoint.unflatten_like({"k": tree["k"], "w": jnp.zeros(5)}, arrays, paths)


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
            if epoch == 1:  # the JSON part fails after the arrays were written
                monkeypatch.setattr(ocp.args, "JsonSave", lambda item: 1 / 0)

    saver = T.ModelCheckpoint(tmp_path)
    with pytest.raises(ZeroDivisionError):
        T.fit(mlp(), blobs(), epochs=3, callbacks=[FailingSecondSave(), saver], **KW)
    monkeypatch.undo()
    assert T.latest_epoch(tmp_path) == 0
    model = mlp()
    meta = T.load_checkpoint(tmp_path, model)
    assert meta["epoch"] == 0 and meta["history"]["epoch"] == [0]
    assert all(np.isfinite(a).all() for a in leaves(model))


def test_failed_write_inside_orbax_keeps_previous(tmp_path, monkeypatch):
    T.fit(mlp(), blobs(), epochs=1, callbacks=[T.ModelCheckpoint(tmp_path)], **KW)
    real = checkpoint.flatten_for_save

    def unwritable_opt_state(tree):
        arrays, paths = real(tree)
        if any("count" in p for p in paths):  # adam's state: orbax fails writing it
            arrays = {**arrays, "00000": object()}
        return arrays, paths

    monkeypatch.setattr(checkpoint, "flatten_for_save", unwritable_opt_state)
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
    assert not (tmp_path / "1").exists()  # the half-written save stays a tmp folder
    T.load_checkpoint(tmp_path, mlp())


def test_nan_stops_training_and_last_good_checkpoint_loads(tmp_path):
    class Poison(T.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                params = jax.tree.map(lambda a: a * jnp.nan, self.loop.state.params)
                self.loop.state = self.loop.state._replace(params=params)

    with pytest.raises(T.NonFiniteLossError, match="epoch 2, step 0") as err:
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
