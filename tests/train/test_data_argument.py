"""fit and evaluate name Keras's fit(x, y) habit (nnjax/train/data_argument.py)."""

import numpy as np
import pytest
from flax import nnx

from nnjax import nn
from nnjax import train as T
from nnjax.train.data_argument import data_as_one_argument


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)).astype(np.float32), rng.integers(0, 2, 8)


@pytest.mark.parametrize("run", [T.fit, T.evaluate], ids=["fit", "evaluate"])
def test_data_split_into_x_and_y_is_told_to_pass_one_tuple(run):
    x, y = _data()
    model = nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    name = run.__name__
    with pytest.raises(TypeError, match=rf"{name}\(model, \(x, y\), \.\.\.\).*3 positional"):
        run(model, x, y, loss="cross_entropy")
    with pytest.raises(TypeError, match=r"takes the data as one argument.*keyword x=, y="):
        run(model, x=x, y=y, loss="cross_entropy")


def test_other_binding_errors_stay_pythons_own():
    x, y = _data()
    model = nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument 'epoch'"):
        T.fit(model, (x, y), loss="cross_entropy", epoch=2)


def test_a_call_that_binds_runs_unchanged_and_the_signature_is_kept():
    @data_as_one_argument
    def fit(model, data, *, epochs=1):
        return model, data, epochs

    assert fit("m", (1, 2), epochs=3) == ("m", (1, 2), 3)
    assert list(__import__("inspect").signature(T.fit).parameters)[:2] == ["model", "data"]
