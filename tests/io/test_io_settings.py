"""Settings changed after a model was built survive ``nnjax.save``/``nnjax.load``.

``nnjax.load`` rebuilds a model from its recorded constructor call; a setting changed
afterwards (``model.dropouts[0].rate = 0.0``) was silently reverted by that call. The
settings that differ from the call's are now recorded beside it (``nnjax.json``'s
``"settings"``) and set again on the rebuilt model.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import activations, nn
from nnjax.io import config, layout
from nnjax.train import ModelCheckpoint, fit


def _cnn(rngs):
    return nn.CNN((8, 8, 1), 3, conv_features=(4,), dense=(8,), batch_norm=True, rngs=rngs)


FRESH = {
    "mlp_dropout": (lambda r: nn.MLP(4, (8,), 3, dropout=0.5, rngs=r), (2, 4)),
    "cnn": (_cnn, (2, 8, 8, 1)),
    "batch_norm": (lambda r: nn.BatchNorm(3, rngs=r), (4, 3)),
    "lstm": (lambda r: nn.LSTM(2, 3, rngs=r), (2, 5, 2)),
    "attention": (lambda r: nn.MultiHeadAttention(2, 4, rngs=r), (2, 3, 4)),
    "transformer": (lambda r: nn.TransformerEncoderBlock(4, 2, rngs=r), (2, 3, 4)),
    "conv_transpose": (lambda r: nn.ConvTranspose2D(2, 3, 3, stride=2, rngs=r), (1, 4, 4, 2)),
}


@pytest.mark.parametrize("name", sorted(FRESH))
def test_a_model_as_built_and_called_records_no_changed_setting(name):
    """Calls in either mode change no setting: a fresh model's file records none."""
    build, shape = FRESH[name]
    model = build(nnx.Rngs(params=0, dropout=1))
    x = jax.random.normal(jax.random.key(0), shape)
    model(x)
    model.eval()
    model(x)
    assert config.describe(model)["settings"] == {}


def test_a_rate_changed_after_building_survives_save_and_load(tmp_path):
    model = nn.MLP(4, (16,), 3, dropout=0.5, rngs=nnx.Rngs(0))
    model.dropouts[0].rate = 0.0  # train without dropout from here on
    loaded = nnjax.load(nnjax.save(model, tmp_path / "m"))
    assert loaded.dropouts[0].rate == 0.0
    x = jax.random.normal(jax.random.key(1), (8, 4))
    # train mode with rate 0: the same outputs as the saved model (rate 0.5 would drop)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)
    recorded = json.loads((tmp_path / "m" / layout.META).read_text())
    assert recorded["settings"] == {"dropouts/0": {"rate": 0.0}}


def test_a_changed_activation_and_tuple_survive(tmp_path):
    model = nn.MLP(4, (8,), 3, dropout=0.5, rngs=nnx.Rngs(0))
    model.layers[0].activation = activations.tanh
    model.dropouts[0].broadcast_dims = (0,)
    model.eval()
    loaded = nnjax.load(nnjax.save(model, tmp_path / "m"))
    assert loaded.layers[0].activation is activations.tanh
    assert loaded.dropouts[0].broadcast_dims == (0,)
    x = jax.random.normal(jax.random.key(1), (8, 4))
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_a_changed_dtype_survives(tmp_path):
    model = nn.Dense(4, 3, rngs=nnx.Rngs(0))
    model.dtype = jnp.bfloat16
    loaded = nnjax.load(nnjax.save(model, tmp_path / "m"))
    x = jnp.ones((2, 4))
    assert loaded(x).dtype == model(x).dtype == jnp.bfloat16


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_training_checkpoint_records_changed_settings(tmp_path):
    model = nn.MLP(4, (8,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    model.dropouts[0].rate = 0.25
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    fit(
        model,
        (x, y),
        loss="cross_entropy",
        epochs=1,
        batch_size=8,
        verbose=0,
        callbacks=[ModelCheckpoint(tmp_path / "ckpt")],
    )
    loaded = nnjax.load(tmp_path / "ckpt" / "1")
    assert loaded.dropouts[0].rate == 0.25


def test_a_file_never_adds_an_attribute_or_replaces_a_layer():
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    config.apply_settings(model, {"layers/0": {"made_up": 1, "kernel": 0.0, "_private": 2}})
    assert not hasattr(model.layers[0], "made_up")
    assert isinstance(model.layers[0].kernel, nnx.Param)


def test_a_file_without_settings_loads_as_before(tmp_path):
    """Files written before settings were recorded (no ``"settings"`` entry)."""
    model = nn.MLP(4, (8,), 3, dropout=0.5, rngs=nnx.Rngs(0))
    folder = nnjax.save(model, tmp_path / "m")
    meta = json.loads((folder / layout.META).read_text())
    del meta["settings"]
    rebuilt = config.rebuild(meta)
    assert rebuilt.dropouts[0].rate == 0.5
