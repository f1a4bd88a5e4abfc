"""Resuming into another run's folder, and a changed ``learning_rate`` on resume."""

import json

import jax
import numpy as np
import pytest

import nnjax
import nnjax.train as T
from nnjax.io import steps
from tests.train._data import blobs, leaves, mlp

KW = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=jax.devices()[:1], seed=5)


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# W2: a resumed run's ModelCheckpoint in another run's folder -----------------------------


@pytest.fixture
def two_runs(tmp_path):
    """``A`` holds epochs 1..2 of this run; ``B`` epochs 1..3 of another (other seed)."""
    a, b = tmp_path / "A", tmp_path / "B"
    T.fit(mlp(), blobs(), epochs=2, callbacks=[T.ModelCheckpoint(a)], **KW)
    other = mlp(seed=9)
    T.fit(other, blobs(), epochs=3, callbacks=[T.ModelCheckpoint(b)], **{**KW, "seed": 6})
    return a, b, leaves(other)


def test_resuming_into_another_runs_folder_is_refused(two_runs):
    a, b, other = two_runs
    before = _listing(b)
    with pytest.raises(
        FileExistsError,
        match=rf"{b} already holds checkpoints \(epochs 1\.\.3\) of another run "
        rf"\(this one resumes from {a}\)",
    ):
        T.fit(mlp(), blobs(), epochs=4, resume_from=a, callbacks=[T.ModelCheckpoint(b)], **KW)
    assert _listing(b) == before
    np.testing.assert_array_equal(leaves(nnjax.load(b))[0], other[0])


def test_resuming_into_another_folder_with_overwrite_replaces_it_whole(two_runs):
    a, b, other = two_runs
    model = mlp()
    cb = T.ModelCheckpoint(b, overwrite=True, max_to_keep=None)
    T.fit(model, blobs(), epochs=4, resume_from=a, callbacks=[cb], **KW)
    assert [e for e, _ in steps.epochs(b)] == [2, 3]  # this run's steps 3 and 4 only
    np.testing.assert_array_equal(leaves(nnjax.load(b))[0], leaves(model)[0])
    assert not np.array_equal(leaves(nnjax.load(b))[0], other[0])


def test_resuming_into_a_new_folder_writes_there_and_the_same_folder_still_resumes(two_runs):
    a, _, _ = two_runs
    new = a.parent / "C"
    T.fit(mlp(), blobs(), epochs=3, resume_from=a, callbacks=[T.ModelCheckpoint(new)], **KW)
    assert [e for e, _ in steps.epochs(new)] == [2]
    T.fit(mlp(), blobs(), epochs=3, resume_from=a, callbacks=[T.ModelCheckpoint(a)], **KW)
    assert [e for e, _ in steps.epochs(a)] == [0, 1, 2]


# W5: fit(resume_from=..., learning_rate=X) ------------------------------------------------


@pytest.fixture
def scheduled(tmp_path):
    """2 epochs at ``learning_rate=0.1``, halved by a schedule: the checkpoint holds 0.05."""
    halve = T.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    callbacks = [halve, T.ModelCheckpoint(tmp_path)]
    history = T.fit(mlp(), blobs(), epochs=2, learning_rate=0.1, callbacks=callbacks, **KW)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05])
    return tmp_path


def _resumed_rate(folder, learning_rate):
    cb = T.ModelCheckpoint(folder)
    history = T.fit(
        mlp(), blobs(), epochs=3, learning_rate=learning_rate, resume_from=folder,
        callbacks=[cb], **KW,
    )  # fmt: skip
    return history.history["learning_rate"][2]


def test_a_changed_learning_rate_is_applied_on_resume(scheduled):
    assert _resumed_rate(scheduled, 0.3) == pytest.approx(0.3)
    meta = json.loads((scheduled / "3" / "nnjax.json").read_text())
    assert meta["learning_rate_argument"] == pytest.approx(0.3)


def test_the_same_learning_rate_keeps_the_checkpoints_scheduled_value(scheduled):
    assert _resumed_rate(scheduled, 0.1) == pytest.approx(0.05)


def test_a_checkpoint_without_the_record_keeps_its_own_value(scheduled):
    path = scheduled / "2" / "nnjax.json"
    meta = json.loads(path.read_text())
    del meta["learning_rate_argument"]  # written by an nnjax that did not record it
    path.write_text(json.dumps(meta))
    assert _resumed_rate(scheduled, 0.3) == pytest.approx(0.05)
