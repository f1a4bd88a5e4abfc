"""nnjax.save / nnjax.load: every nnjax.nn model rebuilt from its recorded arguments."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

R = nnx.Rngs  # every model gets distinct streams, so a wrong restore shows


def _mlp():
    return nn.MLP(4, (5,), 3, dropout=0.5, rngs=R(params=0, dropout=1)), (2, 4)


def _cnn():
    model = nn.CNN(
        (6, 6, 1), 3, conv_features=(2,), dense=(4,), dropout=0.5, batch_norm=True, rngs=R(2)
    )
    return model, (2, 6, 6, 1)


def _sequence():
    return nn.SequenceClassifier(3, (4, 4), 2, cell="lstm", dropout=0.5, rngs=R(3)), (2, 5, 3)


def _regressor():
    return nn.SequenceRegressor(2, 4, 1, cell="gru", all_steps=True, rngs=R(4)), (2, 5, 2)


def _autoencoder():
    return nn.Autoencoder(6, (4,), 2, param_dtype=jnp.float32, rngs=R(5)), (2, 6)


def _conv_autoencoder():
    return nn.ConvAutoencoder((8, 8, 1), (2,), 2, rngs=R(6)), (2, 8, 8, 1)


def _wide_deep():
    return nn.WideAndDeep(5, (4,), 1, rngs=R(7)), (2, 5)


def _sequential():
    rngs = R(8)
    model = nn.Sequential(
        nn.Dense(4, 6, rngs=rngs),
        jax.nn.relu,
        nn.BatchNorm(6, rngs=rngs),
        nn.Dropout(0.5, rngs=rngs),
        nn.Dense(6, 2, activation="tanh", rngs=rngs),
    )
    return model, (2, 4)


MODELS = [
    _mlp,
    _cnn,
    _sequence,
    _regressor,
    _autoencoder,
    _conv_autoencoder,
    _wide_deep,
    _sequential,
]


def _state(model):
    state = nnx.to_pure_dict(nnx.state(model))
    return [
        np.asarray(jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a)
        for a in jax.tree.leaves(state)
    ]


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
@pytest.mark.parametrize("make", MODELS, ids=lambda f: f.__name__[1:])
def test_round_trip_is_bitwise_with_rng_state_and_batch_statistics(make, tmp_path):
    model, shape = make()
    x = jax.random.normal(jax.random.key(0), shape)
    model.train()
    model(x)  # moves the dropout streams and the batch statistics away from their init
    nnjax.save(model, tmp_path / "m")
    loaded = nnjax.load(tmp_path / "m")
    assert type(loaded) is type(model)
    for a, b in zip(_state(model), _state(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    # Training mode: the same dropout masks and batch statistics updates, call after call.
    for _ in range(2):
        np.testing.assert_array_equal(model(x), loaded(x))
    model.eval()
    loaded.eval()
    np.testing.assert_array_equal(model(x), loaded(x))


@pytest.mark.slow
def test_eval_mode_survives_the_round_trip(tmp_path):
    model, shape = _cnn()  # dropout and batch norm
    model.eval()
    nnjax.save(model, tmp_path / "m")
    loaded = nnjax.load(tmp_path / "m")
    x = jnp.ones(shape)
    np.testing.assert_array_equal(loaded(x), model(x))
    np.testing.assert_array_equal(loaded(x), loaded(x))  # no dropout: deterministic


def test_the_folder_holds_the_guide_layout_and_json(tmp_path):
    model, _ = _mlp()
    nnjax.save(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "nnjax.json").read_text())
    assert meta["format"] == "nnjax.checkpoint" and meta["version"] == 1
    assert meta["model"]["class"] == "MLP" and meta["model"]["args"] == []
    assert meta["model"]["kwargs"]["in_features"] == 4 and meta["model"]["kwargs"]["hidden"] == [5]
    assert meta["model"]["kwargs"]["rngs"] == {"$rngs": ["dropout", "params"]}
    assert (tmp_path / "m" / "state" / "_CHECKPOINT_METADATA").is_file()


@pytest.mark.slow
def test_a_loaded_model_saves_again(tmp_path):
    model, shape = _sequential()
    nnjax.save(model, tmp_path / "a")
    nnjax.save(nnjax.load(tmp_path / "a"), tmp_path / "b")
    x = jnp.ones(shape)
    np.testing.assert_array_equal(nnjax.load(tmp_path / "b")(x), model(x))


def test_existing_folder_needs_overwrite(tmp_path):
    model, _ = _mlp()
    nnjax.save(model, tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        nnjax.save(model, tmp_path / "m")
    nnjax.save(model, tmp_path / "m", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left


def test_unrecorded_modules_and_arguments_point_to_save_state(tmp_path):
    with pytest.raises(TypeError, match=r"no recorded constructor arguments.*save_state"):
        nnjax.save(nnx.Linear(2, 3, rngs=R(0)), tmp_path / "a")
    odd = nn.Dense(2, 3, activation=lambda x: 2 * x, rngs=R(0))
    with pytest.raises(TypeError, match=r"Dense argument activation=.*<lambda> cannot be written"):
        nnjax.save(odd, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_save_state_and_load_state_for_any_nnx_module(tmp_path):
    class Plain(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(3, 2, rngs=rngs)
            self.drop = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return self.drop(self.linear(x))

    model = Plain(R(0))
    nnjax.save_state(model, tmp_path / "w")
    other = nnjax.load_state(Plain(R(1)), tmp_path / "w")
    x = jnp.ones((4, 3))
    np.testing.assert_array_equal(model(x), other(x))
    with pytest.raises(nnjax.io.CheckpointError, match=r"records no model.*load_state"):
        nnjax.load(tmp_path / "w")
