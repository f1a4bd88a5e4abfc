"""Tests for sweep checkpoints: a killed sweep resumes and ends where the whole one ends."""

import jax
import numpy as np
import optax
import pytest

from nnjax.nn import MLP
from nnjax.train.callbacks import EarlyStopping
from nnjax.train.checkpoint import ModelCheckpoint
from nnjax.train.sweep import sweep
from tests.train._data import crash_at


def bits(tree):
    """Leaves as arrays (PRNG keys as their key data), for bitwise comparison."""
    key = lambda a: jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)
    return jax.tree.map(lambda a: jax.random.key_data(a) if key(a) else np.asarray(a), tree)


def model_fn(rngs, width):
    return MLP(4, (width,), 3, dropout=0.1, rngs=rngs)


@pytest.mark.slow  # three sweeps with early stopping: ~40 s on a loaded 2-core machine
def test_killed_sweep_resumes_and_ends_where_the_whole_sweep_ends(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 1).astype(np.int32)
    members = {
        "seeds": [0, 1, 2, 3],
        "hyperparams": {"learning_rate": [0.5, 0.05, 0.01, 0.2], "width": [4, 4, 4, 8]},
    }

    def run(folder, extra=(), resume_from=None):
        stop = EarlyStopping("val_loss", patience=1, min_delta=0.05, restore_best_weights=True)
        return sweep(
            model_fn, (x, y), loss="cross_entropy", optimizer=optax.sgd, members=members,
            epochs=5, batch_size=8, validation_data=(x[:16], y[:16]),
            callbacks=[stop, ModelCheckpoint(folder), *extra], resume_from=resume_from,
        )  # fmt: skip

    whole = run(tmp_path / "whole")
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path / "cut", extra=[crash_at(2)])
    assert (tmp_path / "cut" / "group_0" / "2").is_dir()  # epochs 1-2 of group 0 were saved
    assert not (tmp_path / "cut" / "group_1").exists()
    with pytest.raises(FileExistsError, match="resume_from"):
        run(tmp_path / "cut")
    resumed = run(tmp_path / "cut", resume_from=tmp_path / "cut")
    for a, b in zip(whole.groups, resumed.groups):
        jax.tree.map(
            np.testing.assert_array_equal, bits((a.params, a.rest)), bits((b.params, b.rest))
        )
        jax.tree.map(np.testing.assert_array_equal, bits(a.opt_state), bits(b.opt_state))
    for name in whole.history:
        np.testing.assert_array_equal(whole.history[name], resumed.history[name])
    np.testing.assert_array_equal(whole.stopped_epoch, resumed.stopped_epoch)
    np.testing.assert_array_equal(whole.weights_epoch, resumed.weights_epoch)
    assert (whole.stopped_epoch >= 0).any()
    with pytest.raises(ValueError, match="same members"):
        members["seeds"] = [9, 1, 2, 3]
        run(tmp_path / "cut", resume_from=tmp_path / "cut")
