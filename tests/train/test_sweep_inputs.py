"""sweep's arguments are checked before anything compiles (nnjax.train.sweep_args)."""

import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import compiled
from nnjax.train.callbacks import EarlyStopping
from nnjax.train.sweep import grid, sweep
from nnjax.train.sweep_args import split_callbacks


@pytest.fixture(scope="module")
def data():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    return x, (np.arange(16) % 3).astype(np.int32)


def make_model(rngs, width=8):
    return MLP(4, (width,), 3, rngs=rngs)


@pytest.fixture(autouse=True)
def no_compiles():
    traces = compiled.TRACES.count
    yield
    assert compiled.TRACES.count == traces


@pytest.mark.parametrize(
    "kw, error, match",
    [
        (dict(members=grid(learning_rate=[-0.1, 0.01])), ValueError, r"`learning_rate\[0\]` must"),
        (dict(learning_rate=-0.01), ValueError, "`learning_rate` must be a finite number > 0"),
        (dict(seeds=["42"]), TypeError, r"`seeds\[0\]` must be an integer, got '42'"),
        (dict(seeds=[0, -1]), ValueError, r"`seeds\[1\]` must be >= 0"),
        (dict(members={"seed": [0, 1]}), ValueError, r"got the keys \['seed'\] \(unknown"),
        (dict(members=[{"width": 4}]), TypeError, "`members` must be a dict .* got list"),
        (dict(callbacks=EarlyStopping("loss")), TypeError, "got one EarlyStopping; wrap it"),
        (dict(optimizer=optax.GradientTransformation), TypeError, "got the class"),
    ],
    ids=[
        "member-lr",
        "lr",
        "seed-str",
        "seed-negative",
        "members-key",
        "members-list",
        "lone-callback",
        "optimizer-class",
    ],
)
def test_bad_arguments_name_what_was_passed(data, kw, error, match):
    with pytest.raises(error, match=match):
        sweep(make_model, data, loss="cross_entropy", **kw)


def test_model_fn_must_build_a_module_from_rngs(data):
    model = make_model(nnx.Rngs(0))
    with pytest.raises(TypeError, match="builds one member, got an instance of MLP"):
        sweep(model, data, loss="cross_entropy")
    with pytest.raises(TypeError, match="builds one member, got 'mlp'"):
        sweep("mlp", data, loss="cross_entropy")
    with pytest.raises(TypeError, match="no positional argument for rngs"):
        sweep(lambda *, width: model, data, loss="cross_entropy")
    with pytest.raises(TypeError, match=r"model_fn\(nnx.Rngs\(0\), \*\*\{\}\) returned NoneType"):
        sweep(lambda rngs: None, data, loss="cross_entropy")
    with pytest.raises(ValueError, match=r"called as model_fn\(rngs, \*\*hyperparams\)"):
        sweep(lambda width: model, data, loss="cross_entropy", members=grid(width=[4]))


def test_callbacks_may_be_none():
    assert split_callbacks(None) == (None, None, [])
