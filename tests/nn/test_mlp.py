import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import MLP, Dropout

from ._helpers import assert_jit_traces_once, assert_same_model, param_dict


def test_matches_chain_of_dense_ops():
    model = MLP(6, (5, 4), 3, activation="tanh", output_activation="sigmoid", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 2, 3))
    params = param_dict(model)["layers"]
    assert sorted(params) == [0, 1, 2]
    h = x.reshape(2, 6)
    for i in range(2):
        h = jnp.tanh(F.dense(params[i], h))
    np.testing.assert_allclose(
        model(x), jax.nn.sigmoid(F.dense(params[2], h)), rtol=1e-6, atol=1e-6
    )


def test_dropout_uses_nnjax_dropout_and_train_eval():
    model = MLP(4, (16,), 2, dropout=0.5, rngs=nnx.Rngs(0))
    assert isinstance(model.dropouts[0], Dropout)
    x = jnp.ones((3, 4))
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
    model.train()
    assert not np.allclose(model(x), model(x))


def test_deterministic_given_seed():
    a = MLP(4, (8,), 2, dropout=0.3, rngs=nnx.Rngs(7))
    b = MLP(4, (8,), 2, dropout=0.3, rngs=nnx.Rngs(7))
    assert_same_model(a, b)
    x = jnp.ones((2, 4))
    np.testing.assert_array_equal(a(x), b(x))
    c = MLP(4, (8,), 2, dropout=0.3, rngs=nnx.Rngs(8))
    assert not np.allclose(a.layers[0].kernel[...], c.layers[0].kernel[...])


def test_mixed_precision():
    model = MLP(4, (8,), 2, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert model(jnp.ones((2, 4))).dtype == jnp.bfloat16
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(param_dict(model)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": (8, -2)}, r"hidden\[1\]"),
        ({"out_features": 0}, "out_features"),
        ({"dropout": 1.5}, "dropout"),  # 1.0 is allowed (zeros), as in F.dropout
        ({"activation": "rleu"}, "MLP: `activation`.*known"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**({"in_features": 4, "hidden": (8,), "out_features": 2} | kwargs), rngs=nnx.Rngs(0))


def test_numpy_int_sizes_are_ints():
    model = MLP(np.int64(784), (np.int32(8),), np.int64(2), rngs=nnx.Rngs(0))
    assert type(model.in_features) is int and model(jnp.ones((1, 784))).shape == (1, 2)
    with pytest.raises(ValueError, match=r"MLP: `in_features` must be a positive int, got True"):
        MLP(True, (4,), 2, rngs=nnx.Rngs(0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(MLP(4, (8,), 2, dropout=0.2, rngs=nnx.Rngs(0)), jnp.ones((2, 4)))
