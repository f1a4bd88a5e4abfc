"""fit(param_sharding=...): FSDP and tensor-parallel rules equal replicated training.

On the suite's 4 CPU devices (one process): the parameters and optimizer moments are
really split (their ``.sharding`` and per-device shard shapes), the bytes each device
holds fall to about 1/4, a second ``fit`` compiles nothing, and bad settings are named
before anything trains.
"""

import logging

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nnjax.nn import MLP
from nnjax.nn.attention import TransformerEncoderBlock
from nnjax.train import fit
from nnjax.train.callbacks import Callback
from nnjax.train.sharding import state_layout
from nnjax.train.state import TrainState

SETTINGS = {"loss": "cross_entropy", "epochs": 2, "batch_size": 16, "verbose": 0, "seed": 1}


class KeepState(Callback):
    """Keeps the run's final TrainState (on the devices, as the step left it)."""

    state = None

    def on_train_end(self, logs=None):
        KeepState.state = self.loop.state


def _data(n=72, features=8, classes=4):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, features)).astype(np.float32)
    return x, np.argmax(x[:, :classes], axis=1).astype(np.int32)


def _params(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def _trained(param_sharding=None, mesh=None, **kw):
    model = MLP(8, (32,), 4, rngs=nnx.Rngs(0))
    keep = KeepState()
    kw = {"param_sharding": param_sharding, "mesh": mesh, "callbacks": [keep], **kw}
    fit(model, _data(), **SETTINGS, **kw)
    return model, KeepState.state


def _assert_close(a, b):
    for x, y in zip(_params(a), _params(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def _laid_out(array, spec):
    """Whether ``array`` is sharded as ``spec`` says (XLA drops trailing ``None`` s)."""
    target = NamedSharding(array.sharding.mesh, spec)
    return array.sharding.is_equivalent_to(target, array.ndim)


def _bytes_per_device(tree):
    """Bytes of ``tree``'s leaves on the busiest device, and in all (one copy)."""
    per_device, total = {}, 0
    for leaf in jax.tree.leaves(tree):
        total += leaf.nbytes
        for shard in leaf.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values()), total


@pytest.fixture(scope="module")
def replicated():
    return _trained()


@pytest.fixture(scope="module")
def fsdp():
    return _trained("fsdp")


def test_fsdp_equals_replicated(replicated, fsdp):
    _assert_close(fsdp[0], replicated[0])


@pytest.mark.devices(4)
def test_fsdp_really_shards_parameters_and_adam_moments(fsdp):
    model, state = fsdp
    hidden = model.layers[0].kernel[...]  # (8, 32): its largest dim, 32, is split
    assert _laid_out(hidden, P(None, "data"))
    assert {s.data.shape for s in hidden.addressable_shards} == {(8, 8)}
    out = model.layers[1].kernel[...]  # (32, 4): 32 again
    assert _laid_out(out, P("data", None))
    assert {s.data.shape for s in out.addressable_shards} == {(8, 4)}
    moments = [leaf for leaf in jax.tree.leaves(state.opt_state) if leaf.shape == (8, 32)]
    assert len(moments) == 2  # Adam's mu and nu of the hidden kernel
    assert all(_laid_out(m, P(None, "data")) for m in moments)


@pytest.mark.devices(4)
def test_fsdp_holds_about_a_quarter_of_the_bytes_per_device(replicated, fsdp):
    parts = lambda state: (state.params, state.opt_state)
    rep_device, rep_total = _bytes_per_device(parts(replicated[1]))
    fsdp_device, fsdp_total = _bytes_per_device(parts(fsdp[1]))
    assert rep_total == fsdp_total and rep_device == rep_total  # replicated: a full copy each
    # every parameter dim here divides by 4; only scalars (step counts, hyperparameters)
    # stay replicated
    assert fsdp_device <= rep_total / 4 + 64, (fsdp_device, rep_total)


def test_a_second_fsdp_fit_compiles_nothing(fsdp, caplog):
    model = MLP(8, (32,), 4, rngs=nnx.Rngs(0))
    fit(model, _data(), param_sharding="fsdp", **SETTINGS)  # the same program as `fsdp`
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        fit(model, _data(), param_sharding="fsdp", **SETTINGS)
    compiles = [r.getMessage() for r in caplog.records if "from_" in r.getMessage()]
    assert compiles == []


@pytest.mark.slow  # about 11 s (a 2x2 mesh compile)
def test_tensor_parallel_rules_equal_replicated(replicated):
    mesh = Mesh(np.asarray(jax.devices()).reshape(2, 2), ("data", "model"))
    rules = [(r"layers/0/kernel", P(None, "model")), (r"layers/1/kernel", P("model", None))]
    model, _ = _trained(rules, mesh=mesh)
    _assert_close(model, replicated[0])
    assert _laid_out(model.layers[0].kernel[...], P(None, "model"))
    assert {s.data.shape for s in model.layers[0].kernel[...].addressable_shards} == {(8, 16)}
    assert _laid_out(model.layers[0].bias[...], P())


@pytest.mark.slow  # about 30 s (two transformer-block compiles)
def test_megatron_rules_for_attention_train_like_replicated():
    mesh = Mesh(np.asarray(jax.devices()).reshape(2, 2), ("data", "model"))
    rules = [
        (r"attention/(query|key|value)/kernel", P(None, "model", None)),
        (r"attention/(query|key|value)/bias", P("model", None)),
        (r"attention/out/kernel", P("model", None, None)),
        (r"mlp_in/kernel", P(None, "model")),
        (r"mlp_in/bias", P("model")),
        (r"mlp_out/kernel", P("model", None)),
    ]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 16)).astype(np.float32)
    settings = {"loss": "mse", "epochs": 1, "batch_size": 4, "verbose": 0, "optimizer": "sgd"}
    models = [TransformerEncoderBlock(16, 4, rngs=nnx.Rngs(0)) for _ in range(2)]
    fit(models[0], (x, x), devices=jax.devices()[:2], **settings)
    fit(models[1], (x, x), param_sharding=rules, mesh=mesh, **settings)
    _assert_close(models[1], models[0])
    query = models[1].attention.query.kernel[...]
    assert {s.data.shape for s in query.addressable_shards} == {(16, 2, 4)}


@pytest.mark.parametrize(
    ("param_sharding", "mesh_axes", "error", "match"),
    [
        ("zero3", ("data",), ValueError, r"param_sharding must be .*got 'zero3'"),
        ([(r"conv/kernel", P("data"))], ("data",), ValueError, r"\['conv/kernel'\] match no"),
        ([(r"kernel", P(None, "model"))], ("data",), ValueError, r"axis 'model'.*not an axis"),
        ([(r"layers/0/kernel", P(None, None, "data"))], ("data",), ValueError, "3 entries"),
        ("kernel", ("data",), ValueError, "got 'kernel'"),
        ([r"kernel"], ("data",), TypeError, "a .regex, PartitionSpec. pair"),
    ],
)
def test_bad_settings_are_named_before_training(param_sharding, mesh_axes, error, match):
    model = MLP(8, (32,), 4, rngs=nnx.Rngs(0))
    before = [np.asarray(a) for a in _params(model)]
    mesh = Mesh(np.asarray(jax.devices()), mesh_axes)
    with pytest.raises(error, match=match):
        fit(model, _data(), param_sharding=param_sharding, mesh=mesh, **SETTINGS)
    for a, b in zip(_params(model), before):
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.devices(4)
def test_the_fsdp_rule_leaves_indivisible_leaves_replicated():
    state = TrainState({"odd": np.zeros((3, 5)), "w": np.zeros((6, 8))}, (), {})
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    specs = state_layout(state, mesh, "fsdp").specs.params
    assert specs == {"odd": P(), "w": P(None, "data")}


@pytest.mark.devices(4)
def test_fsdp_that_cannot_shard_says_so():
    x, y = _data()
    model = MLP(8, (16,), 4, rngs=nnx.Rngs(0))
    with pytest.warns(UserWarning, match=r"param_sharding='fsdp' shards nothing: batch_size=6"):
        fit(model, (x, y), loss="cross_entropy", batch_size=6, param_sharding="fsdp", verbose=0)


@pytest.mark.devices(4)
def test_a_layout_is_derived_once_per_structure_and_rules():
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    rules = [(r"w", P("data"))]  # a list: cannot be kept, derived afresh
    state = TrainState({"odd": np.zeros((3, 5)), "w": np.zeros((8, 2))}, (), {})
    again = TrainState({"odd": np.ones((3, 5)), "w": np.ones((8, 2))}, (), {})
    assert state_layout(state, mesh, "fsdp") is state_layout(again, mesh, "fsdp")
    assert state_layout(state, mesh, tuple(rules)) is state_layout(again, mesh, tuple(rules))
    assert state_layout(state, mesh, rules) == state_layout(again, mesh, tuple(rules))
    assert state_layout(state, mesh, rules).specs.params == {"odd": P(), "w": P("data")}
    wider = TrainState({"odd": np.zeros((3, 5)), "w": np.zeros((8, 4))}, (), {})
    assert state_layout(wider, mesh, "fsdp").specs.params["w"] == P("data", None)  # dim 0 now
    assert state_layout(wider, mesh, "fsdp") is not state_layout(state, mesh, "fsdp")
