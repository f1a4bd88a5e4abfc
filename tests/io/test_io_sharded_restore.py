"""Loading into a model laid out over several local devices keeps its layout.

``load_state`` and ``train.load_checkpoint`` in one process used to put every array of
a model sharded over the local devices on device 0 (``jnp.asarray`` of the host copy).
"""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import nnjax
import nnjax.train as T
from nnjax import nn
from nnjax.train.checkpoint import save_checkpoint
from nnjax.train.state import TrainState

pytestmark = pytest.mark.devices(4)


def _sharded_mlp(seed):
    """An MLP with kernels split P(None, 'data') and biases P('data') over 4 devices."""
    model = nn.MLP(4, (8,), 16, rngs=nnx.Rngs(seed))
    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    state = nnx.state(model, nnx.Param)
    specs = jax.tree.map(lambda a: P(None, "data") if a.ndim == 2 else P("data"), state)
    shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)
    nnx.update(model, jax.device_put(state, shardings))
    return model


def _params(model):
    return [v.get_value() for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param))]


def _check_kept(saved, loaded, before):
    for want, got, sharding in zip(_params(saved), _params(loaded), before, strict=True):
        assert got.sharding == sharding  # was SingleDeviceSharding(device 0)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_load_state_keeps_the_models_sharding(tmp_path):
    saved = _sharded_mlp(0)
    folder = nnjax.save_state(saved, tmp_path / "ck")
    model = _sharded_mlp(1)
    before = [a.sharding for a in _params(model)]
    assert before[1].spec == P(None, "data")  # layers/0/kernel
    nnjax.load_state(model, folder)
    _check_kept(saved, model, before)
    assert model(np.ones((2, 4), np.float32)).shape == (2, 16)


def test_load_checkpoint_keeps_the_models_sharding(tmp_path):
    saved = _sharded_mlp(0)
    _, params, rest = nnx.split(saved, nnx.Param, ...)
    save_checkpoint(tmp_path, 0, TrainState(params, (), rest), {"seed": 0})
    model = _sharded_mlp(1)
    before = [a.sharding for a in _params(model)]
    T.load_checkpoint(tmp_path, model)
    _check_kept(saved, model, before)


def test_an_unsharded_model_stays_on_the_default_device(tmp_path):
    folder = nnjax.save_state(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), tmp_path / "ck")
    model = nnjax.load_state(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1)), folder)
    for a in _params(model):
        assert a.devices() == {jax.devices()[0]} and not a.committed


def test_a_model_committed_to_another_device_stays_there(tmp_path):
    folder = nnjax.save_state(nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0)), tmp_path / "ck")
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(1))
    nnx.update(model, jax.device_put(nnx.state(model), jax.devices()[2]))
    nnjax.load_state(model, folder)
    for a in _params(model):
        assert a.devices() == {jax.devices()[2]}
