"""Sweep edge cases found by an audit: each equals what ``fit`` does, or is refused.

A resumed sweep with other hyperparameters trained with the checkpoint's while
reporting the new ones; whole-number learning rates became an int32 state that a
schedule truncated to 0; a diverged member got its best weights back from
``EarlyStopping``; ``epochs=0`` broke ``rows()``; ``Uniform`` took a range it cannot draw.
"""

import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.nn import MLP

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
KW = dict(loss="cross_entropy", optimizer="sgd", batch_size=16, verbose=0)
make = lambda rngs: MLP(4, (8,), 2, rngs=rngs)


class Kill(T.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


@pytest.mark.slow  # three sweeps with checkpoints: runs in CI's slow step
def test_resuming_with_other_hyperparameters_is_refused(tmp_path):
    members = dict(seeds=[0, 1], epochs=4, **KW)
    old, new = {"learning_rate": [0.01, 0.02]}, {"learning_rate": [0.5, 0.9]}
    with pytest.raises(KeyboardInterrupt):
        T.sweep(make, (X, Y), hyperparams=old, callbacks=[T.ModelCheckpoint(tmp_path), Kill()],
                **members)  # fmt: skip
    again = dict(callbacks=[T.ModelCheckpoint(tmp_path)], resume_from=tmp_path, **members)
    message = r"hyperparams=\{'learning_rate': \[0.01, 0.02\]\}, but this sweep has hyperp"
    with pytest.raises(ValueError, match=message):
        T.sweep(make, (X, Y), hyperparams=new, **again)
    same = T.sweep(make, (X, Y), hyperparams=old, **again)
    assert same.history["learning_rate"].tolist() == [[0.01] * 4, [0.02] * 4]


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_whole_number_learning_rates_follow_a_schedule_as_in_fit():
    halve = lambda: T.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    result = T.sweep(make, (X, Y), members=T.grid(seeds=[0], learning_rate=[1, 2]), epochs=3,
                     callbacks=[halve()], **KW)  # fmt: skip
    history = T.fit(make(nnx.Rngs(0)), (X, Y), learning_rate=1, epochs=3, callbacks=[halve()], **KW)
    np.testing.assert_allclose(result.history["learning_rate"][0], history["learning_rate"])
    np.testing.assert_allclose(result.history["learning_rate"][1], [1.0, 0.5, 0.25])  # was 0


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_diverged_member_keeps_its_weights_before_the_failing_dispatch():
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32) * 3
    y = x[:, :1].copy()
    stop = T.EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    result = T.sweep(lambda rngs: MLP(4, (), 1, rngs=rngs), (x, y), loss="mse", optimizer="sgd",
                     seeds=[0], hyperparams={"learning_rate": [0.05, 1.2]}, epochs=4, batch_size=16,
                     validation_data=(x, y), callbacks=[stop], verbose=0)  # fmt: skip
    assert result.diverged_epoch[1] >= 0 and result.diverged_epoch[0] == -1
    assert result.weights_epoch[1] == -1  # was its best epoch, 0: restored after diverging
    assert result.best_index() == 0


def test_no_epochs_gives_rows_without_scores():
    result = T.sweep(make, (X, Y), seeds=[0, 1], epochs=0, **KW)
    rows = result.rows()
    assert [r["best_epoch"] for r in rows] == [-1, -1] and np.isnan(rows[0]["best_loss"])
    assert "member" in result.table()
    with pytest.raises(ValueError, match=r"no member of the 2 has a finite 'loss'"):
        result.best_index()


def test_uniform_refuses_a_range_it_cannot_draw():
    with pytest.raises(ValueError, match=r"Uniform: the range high - low .* overflows a float64"):
        T.Uniform(-1e308, 1e308)
    assert T.random_search(2, {"x": T.Uniform(-1e300, 1e300)}, seed=0)  # wide but drawable
