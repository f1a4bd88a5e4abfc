"""Tests for nnjax.train.sweep_result: table, best member, CSV and DataFrame."""

import csv
import sys

import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train.evaluate import evaluate
from nnjax.train.sweep import grid, sweep
from nnjax.train.sweep_result import SweepResult


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int32)


@pytest.fixture(scope="module")
def result(data):
    def model_fn(rngs, width):
        return MLP(4, (width,), 2, rngs=rngs)

    x, y = data
    return sweep(
        model_fn, (x[:32], y[:32]), loss="cross_entropy", optimizer=optax.sgd,
        members=grid(seeds=[0], width=[4, 8], learning_rate=[1e-3, 0.3]), epochs=3,
        batch_size=8, validation_data=(x[32:], y[32:]),
    )  # fmt: skip


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
def test_table_lists_members_hyperparameters_and_best_epochs(result):
    text = result.table()
    lines = text.splitlines()
    assert lines[0].split() == [
        "member", "seed", "learning_rate", "width", "best_val_loss", "best_epoch",
        "diverged_epoch",
    ]  # fmt: skip
    assert len(lines) == 5
    val = result.history["val_loss"]
    for i, line in enumerate(lines[1:]):
        cells = line.split()
        assert int(cells[0]) == i and int(cells[3]) == result.hyperparams["width"][i]
        np.testing.assert_allclose(float(cells[4]), val[i].min(), rtol=1e-5, atol=1e-6)
        assert int(cells[5]) == int(np.argmin(val[i]))
        assert int(cells[6]) == -1  # no member diverged
    assert "best_accuracy" in result.table("accuracy")


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_best_is_an_ordinary_model(result, data):
    x, y = data
    i = result.best_index()
    final = result.history["val_loss"][:, -1]
    assert i == int(np.argmin(final))  # no early stopping: members hold their last epoch
    model = result.best()
    assert isinstance(model, MLP)
    scores = evaluate(model, (x[32:], y[32:]), loss="cross_entropy")
    np.testing.assert_allclose(scores["loss"], final[i], atol=1e-5)
    assert result.best("val_accuracy", mode="max").layers[0].kernel.shape[0] == 4


def test_csv_and_dataframe(result, tmp_path, monkeypatch):
    path = tmp_path / "sweep.csv"
    result.to_csv(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["member"]) for r in rows] == [0, 1, 2, 3]
    np.testing.assert_allclose(
        [float(r["best_val_loss"]) for r in rows], np.nanmin(result.history["val_loss"], 1),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match=r"to_dataframe needs the package 'pandas'.*examples"):
        result.to_dataframe()


def test_dataframe_rows_equal_the_csv_rows(result, tmp_path):
    pytest.importorskip("pandas")  # the [examples] extra
    frame = result.to_dataframe()
    assert frame["member"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(
        frame["best_val_loss"].to_numpy(), np.nanmin(result.history["val_loss"], 1),
        rtol=1e-6, atol=1e-7,
    )  # fmt: skip


def test_best_skips_nan_and_respects_held_weights():
    history = {"loss": np.array([[1.0, 0.5], [1.0, np.nan], [0.1, 0.2]])}
    result = SweepResult([], np.arange(3), {}, history)
    assert result.best_index() == 2  # NaN counts as worst; held weights: the last epoch
    assert result.best_index(mode="max") == 0
    held = SweepResult([], np.arange(3), {}, history, weights_epoch=np.array([1, 1, 0]))
    assert held.best_index() == 2
    values, epochs = held.best_epochs()
    np.testing.assert_allclose(values, [0.5, 1.0, 0.1])
    assert epochs.tolist() == [1, 0, 0]
    with pytest.raises(KeyError, match="'val_loss' is not in the history"):
        held.best_index("val_loss")


def test_member_of_another_group_is_found(result):
    assert len(result.groups) == 2
    assert result.member(2).layers[0].kernel.shape == (4, 8)
    assert isinstance(result.member(-1), nnx.Module)
    with pytest.raises(IndexError):
        result.member(4)
    with pytest.raises(TypeError, match=r"a member index must be an int, got 1\.5"):
        result.member(1.5)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_predictions_span_groups_of_different_widths(result, data):
    """Each group predicts in its own program; members come back in member order."""
    from nnjax.train.ensemble import ensemble_predict, member_predictions

    x = data[0][32:]
    stacked = np.asarray(member_predictions(result, x))
    assert stacked.shape == (4, 16, 2)
    for i in range(4):
        model = result.member(i)
        model.eval()
        np.testing.assert_allclose(stacked[i], model(x), rtol=1e-5, atol=1e-6)
    probs = np.asarray(ensemble_predict(result, x, activation="softmax"))
    softmax = np.exp(stacked) / np.exp(stacked).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(probs, softmax.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_integer_hyperparameters_stay_integers(result):
    assert result.hyperparams["width"].dtype == np.int64
    members = grid(seeds=[0], width=[4, 8], learning_rate=[1e-3, 0.3])  # as the fixture's
    widths = [row["width"] for row in result.rows()]
    assert widths == members["hyperparams"]["width"]
    assert all(type(w) is int for w in widths)
