import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import CNN, BatchNorm, Dropout

from ._helpers import assert_jit_traces_once, assert_same_model, param_dict

SMALL = {"conv_features": (2, 3), "dense": (4,)}


def test_matches_functional_composition():
    model = CNN((8, 8), 3, **SMALL, rngs=nnx.Rngs(0))
    p = param_dict(model)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8))
    h = x[..., None]
    for i in (0, 2):  # conv, pool, conv, pool
        h = F.max_pool2d(jax.nn.relu(F.conv2d(p["features"]["layers"][i], h)), 2)
    h = jax.nn.relu(F.dense(p["head"]["layers"][0], h.reshape(2, -1)))
    np.testing.assert_allclose(model(x), F.dense(p["head"]["layers"][1], h), rtol=1e-5, atol=1e-5)
    assert p["head"]["layers"][0]["kernel"].shape == (2 * 2 * 3, 4)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_batch_norm_dropout_and_train_eval():
    model = CNN(
        (4, 4, 2),
        2,
        **SMALL,
        pool="avg",
        batch_norm=True,
        dropout=0.5,
        conv_dropout=0.5,
        rngs=nnx.Rngs(0),
    )
    layers = model.features.layers
    assert any(isinstance(m, BatchNorm) for m in layers)
    assert any(isinstance(m, Dropout) and m.broadcast_dims == (1, 2) for m in layers)
    x = jax.random.normal(jax.random.key(2), (3, 4, 4, 2))
    before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    call = nnx.jit(lambda m, x: m(x))  # one compile per mode instead of op-by-op dispatch
    model.eval()
    np.testing.assert_array_equal(call(model, x), call(model, x))
    unchanged = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    chex_equal = jax.tree.map(np.array_equal, before, unchanged)
    assert all(jax.tree.leaves(chex_equal))
    model.train()
    assert not np.allclose(call(model, x), call(model, x))
    after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, before, after)))


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_deterministic_given_seed_and_mixed_precision():
    a = CNN((4, 4), 2, **SMALL, dropout=0.2, rngs=nnx.Rngs(3))
    b = CNN((4, 4), 2, **SMALL, dropout=0.2, rngs=nnx.Rngs(3))
    assert_same_model(a, b)
    c = CNN((4, 4), 2, **SMALL, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert c(jnp.ones((1, 4, 4))).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (4,)}, "input_shape"),
        ({"conv_features": (2, 0)}, r"conv_features\[1\]"),
        ({"pool": "median"}, "pool.*max, avg"),
        ({"activation": "nope"}, "known"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CNN(**({"input_shape": (4, 4), "out_features": 2} | SMALL | kwargs), rngs=nnx.Rngs(0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(
        CNN((4, 4), 2, **SMALL, batch_norm=True, rngs=nnx.Rngs(0)), jnp.ones((2, 4, 4))
    )
