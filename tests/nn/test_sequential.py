import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import Dense, Dropout, Embedding, Sequential

from ._helpers import assert_jit_traces_once


def test_applies_layers_in_order():
    rngs = nnx.Rngs(0)
    model = Sequential(Dense(3, 5, rngs=rngs), jax.nn.relu, Dense(5, 2, rngs=rngs))
    x = jax.random.normal(jax.random.key(1), (4, 3))
    ref = F.dense(model[2].params(), jax.nn.relu(F.dense(model[0].params(), x)))
    np.testing.assert_allclose(model(x), ref, rtol=1e-6, atol=1e-6)
    assert len(model) == 3


def test_not_callable_is_an_error():
    with pytest.raises(TypeError, match="layer 1"):
        Sequential(Dense(3, 5, rngs=nnx.Rngs(0)), 42)


def test_train_eval_reaches_nested_dropout():
    model = Sequential(Dropout(0.5, rngs=nnx.Rngs(0)))
    x = jnp.ones((2, 8))
    model.eval()
    np.testing.assert_array_equal(model(x), x)
    model.train()
    assert not np.array_equal(model(x), x)


def test_jit_does_not_retrace():
    assert_jit_traces_once(Sequential(Dense(3, 2, rngs=nnx.Rngs(0)), jax.nn.tanh), jnp.ones((2, 3)))


def test_an_embedding_first_makes_integer_x_acceptable_to_fit_and_predict():
    from nnjax import train

    rngs = nnx.Rngs(0)
    tokens = Sequential(
        Embedding(10, 4, rngs=rngs), lambda h: h.mean(axis=1), Dense(4, 2, rngs=rngs)
    )
    dense = Sequential(Dense(3, 2, rngs=rngs))
    assert tokens.integer_inputs == ("x",)
    assert dense.integer_inputs == () and Sequential().integer_inputs == ()
    assert Sequential(jax.nn.relu).integer_inputs == ()
    ids = np.random.default_rng(0).integers(0, 10, (16, 5)).astype(np.int32)
    y = (ids[:, 0] > 4).astype(np.int32)
    train.fit(tokens, (ids, y), loss="cross_entropy", epochs=1, batch_size=8, verbose=0)
    np.testing.assert_allclose(train.predict(tokens, ids), tokens(ids), rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match=r"x has dtype int32; models expect floating"):
        train.fit(dense, (ids[:, :3], y), loss="cross_entropy", verbose=0)
