"""``sweep(accumulate_steps=...)``: each member updates as ``fit`` with the same count."""

import dataclasses

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train.callbacks import LearningRateScheduler
from nnjax.train.loop import fit
from nnjax.train.sweep import grid, sweep
from tests.train._data import three_classes

COMMON = dict(loss="cross_entropy", epochs=3, batch_size=8, verbose=0)  # 37 rows: padded


def _mlp(rngs):
    return MLP(4, (8,), 3, rngs=rngs)


def _params(model):
    return jax.tree.leaves(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_members_accumulate_as_fit_does():
    data = three_classes(37)
    halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5)  # set per member, injected
    members = grid(seeds=[0, 1], learning_rate=[1e-2, 1e-1])
    result = sweep(
        _mlp, data, optimizer=optax.adam, members=members, accumulate_steps=3,
        callbacks=[halve], **COMMON,
    )  # fmt: skip
    for i, (seed, lr) in enumerate(zip(members["seeds"], members["hyperparams"]["learning_rate"])):
        model, once = _mlp(nnx.Rngs(seed)), _mlp(nnx.Rngs(seed))
        history = fit(
            model, data, optimizer="adam", learning_rate=lr, seed=seed, accumulate_steps=3,
            callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5)], **COMMON,
        )  # fmt: skip
        fit(once, data, optimizer="adam", learning_rate=lr, seed=seed, **COMMON)
        for got, want, plain in zip(
            _params(result.member(i)), _params(model), _params(once), strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            assert np.abs(want - plain).max() > 1e-4  # accumulating changed the updates
        np.testing.assert_allclose(
            result.history["loss"][i], history.history["loss"], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            result.history["learning_rate"][i], history.history["learning_rate"], rtol=1e-6
        )


@pytest.mark.parametrize(
    ("steps", "error", "words"),
    [(0, ValueError, "accumulate_steps"), ("2", TypeError, "accumulate_steps")],
)
def test_a_bad_count_is_refused_before_anything_trains(steps, error, words):
    with pytest.raises(error, match=words):
        sweep(_mlp, three_classes(16), members=grid(seeds=[0]), accumulate_steps=steps, **COMMON)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_an_unhashable_optimizer_factory_still_sweeps():
    @dataclasses.dataclass  # eq=True: unhashable, as many configuration objects are
    class Adam:
        b1: float = 0.9

        def __call__(self, learning_rate):
            return optax.adam(learning_rate, b1=self.b1)

    for steps in (1, 2):
        result = sweep(_mlp, three_classes(16), optimizer=Adam(), members=grid(seeds=[0]),
                       accumulate_steps=steps, **COMMON)  # fmt: skip
        assert np.isfinite(result.history["loss"]).all()
