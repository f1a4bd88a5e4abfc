"""A sweep's history: names aligned per epoch, and what callbacks write recorded."""

import numpy as np
import optax
import pytest

from nnjax.nn import MLP
from nnjax.train.callbacks import Callback
from nnjax.train.checkpoint import ModelCheckpoint
from nnjax.train.history import History, saved_dict
from nnjax.train.sweep import sweep
from nnjax.train.sweep_step import SweepHistory
from tests.train._data import crash_at


def test_a_name_missing_from_an_epoch_is_nan_there():
    h = SweepHistory()
    h.append(0, {"loss": np.array([1.0, 2.0])})
    h.append(1, {"loss": np.array([0.5, 1.5]), "val_loss": np.array([0.7, 1.7])})
    h.append(2, {"val_loss": np.array([0.6, 1.6])})
    np.testing.assert_array_equal(h["loss"], [[1.0, 0.5, np.nan], [2.0, 1.5, np.nan]])
    np.testing.assert_array_equal(h["val_loss"], [[np.nan, 0.7, 0.6], [np.nan, 1.7, 1.6]])
    again = SweepHistory.from_dict(h.to_dict())
    np.testing.assert_array_equal(again["val_loss"], h["val_loss"])


def test_amend_records_real_values_per_member_and_skips_the_rest():
    h = SweepHistory()
    logs = {"loss": np.array([1.0, 2.0])}
    h.append(0, dict(logs))
    logs.update(loss=np.array([3.0, 4.0]), gap=np.array([0.5, -0.5]), step=7, tag="x")
    logs.update(flags=np.array([True, False]), other=np.ones(3), wrapped=[0.25, 0.75])
    h.amend(0, logs)
    assert sorted(h.logs) == ["gap", "loss", "step", "wrapped"]
    np.testing.assert_array_equal(h["loss"], [[3.0], [4.0]])  # a changed value
    np.testing.assert_array_equal(h["gap"], [[0.5], [-0.5]])
    np.testing.assert_array_equal(h["step"], [[7.0], [7.0]])  # one number: every member's
    np.testing.assert_array_equal(h["wrapped"], [[0.25], [0.75]])
    h.append(1, {"loss": np.array([2.0, 3.0])})
    np.testing.assert_array_equal(h["gap"], [[0.5, np.nan], [-0.5, np.nan]])
    with pytest.raises(ValueError, match="epoch 0 is not the last one appended"):
        h.amend(0, logs)
    with pytest.raises(ValueError, match=r"\(None\)"):
        SweepHistory().amend(0, logs)


def test_saved_dict_amends_a_copy_of_either_history():
    for history, value in ((History(), 0.5), (SweepHistory(), np.array([0.5, 0.5]))):
        history.append(3, {"loss": value})
        saved = saved_dict(history, 3, {"loss": value, "gap": 0.25})
        assert list(saved["history"]) == ["loss", "gap"]
        assert "gap" not in history.to_dict()["history"]  # the history itself is unchanged
        assert saved_dict(history, 2, {"gap": 1.0}) == history.to_dict()  # not its last epoch
        assert saved_dict(history, 3, None) == history.to_dict()


class Gap(Callback):
    """Writes ``gap = val_loss - loss`` (per member) into the epoch's logs."""

    writes_logs = ("gap",)

    def on_epoch_end(self, epoch, logs=None):
        logs["gap"] = logs["val_loss"] - logs["loss"]


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32)


def _run(x, y, callbacks, resume_from=None, epochs=3):
    return sweep(
        lambda rngs: MLP(4, (6,), 2, rngs=rngs), (x, y), loss="cross_entropy",
        optimizer=optax.sgd, hyperparams={"learning_rate": [0.1, 0.3]}, seeds=[0, 1],
        epochs=epochs, batch_size=8, validation_data=(x[:8], y[:8]), callbacks=callbacks,
        resume_from=resume_from,
    )  # fmt: skip


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
def test_a_callbacks_logs_reach_the_result_and_the_checkpoint(tmp_path):
    x, y = _data()
    whole = _run(x, y, [Gap(), ModelCheckpoint(tmp_path / "whole")])
    gap = whole.history["val_loss"] - whole.history["loss"]
    assert whole.history["gap"].shape == (2, 3) and np.isfinite(gap).all()
    np.testing.assert_allclose(whole.history["gap"], gap, rtol=1e-12, atol=1e-12)
    # cut after epoch 2 (saved with its gap), resumed: the same history as the whole run
    with pytest.raises(RuntimeError, match="killed"):
        _run(x, y, [Gap(), ModelCheckpoint(tmp_path / "cut"), crash_at(1)])
    folder = tmp_path / "cut"
    resumed = _run(x, y, [Gap(), ModelCheckpoint(folder)], resume_from=folder)
    assert sorted(resumed.history) == sorted(whole.history)
    for name in whole.history:
        np.testing.assert_array_equal(resumed.history[name], whole.history[name])
