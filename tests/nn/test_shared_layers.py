"""A layer passed in several places of one model, and the block's one-program eager call."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn
from nnjax.functional import _eager
from nnjax.nn import _config

SHARED = (
    r"^nnjax\.save: Sequential argument 2 is the Dense already passed as Sequential argument "
    r"0: a model that reuses one layer instance in several places cannot be rebuilt from its "
    r"constructor call .*nnjax\.save_state"
)


def test_saving_a_model_that_reuses_a_layer_says_so(tmp_path):
    d = nn.Dense(4, 4, rngs=nnx.Rngs(0))
    model = nn.Sequential(d, jax.nn.relu, d)
    with pytest.raises(TypeError, match=SHARED):
        nnjax.save(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    # a layer inside a module argument counts too, and the outer model says the same
    inner = nn.Sequential(nn.Sequential(d), d)
    with pytest.raises(TypeError, match=r"argument 1 is the Dense already passed as .*layers/0"):
        _config.module_call(inner)
    with pytest.raises(TypeError, match=r"reuses one layer instance"):
        _config.module_call(nn.Sequential(inner, jax.nn.relu))


def test_a_shared_layer_without_state_still_saves():
    """A reused pooling layer behaves as its copies: the recorded call rebuilds the model."""
    pool = nn.MaxPool2D(2)
    conv = nn.Conv2D(1, 2, 3, rngs=nnx.Rngs(0))
    call = _config.module_call(nn.Sequential(pool, conv, pool))
    assert [a["$module"]["class"] for a in call["args"]] == ["MaxPool2D", "Conv2D", "MaxPool2D"]


@pytest.mark.usefixtures("fast_compiles")
@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_an_eager_block_call_with_a_named_activation_is_one_program(logged_compiles):
    # a shape no other test uses and a fresh cache, so that the first call compiles here
    _eager._program.cache_clear()
    block = nn.TransformerEncoderBlock(12, 3, mlp_features=20, rngs=nnx.Rngs(0))
    x, shifted = jax.random.normal(jax.random.key(1), (2, 3, 7, 12))
    with logged_compiles() as compiled:
        first = block(x)
    assert len(compiled) == 1, compiled  # one program (op by op: one per op)
    with logged_compiles() as compiled:
        again = block(shifted)
    assert compiled == []
    expected = nnjax.functional.transformer_encoder_block(block.params(), shifted)
    np.testing.assert_allclose(again, expected, rtol=1e-6, atol=1e-6)
    assert callable(block.activation) and first.shape == x.shape


def test_the_block_passes_its_name_unless_given_or_set_a_callable(monkeypatch):
    passed = []

    def spy(params, x, **kwargs):
        passed.append(kwargs["activation"])
        return x

    monkeypatch.setattr(nnjax.nn.attention.F, "transformer_encoder_block", spy)
    x = jnp.ones((1, 2, 4))
    nn.TransformerEncoderBlock(4, 2, activation="ReLU", rngs=nnx.Rngs(0))(x)
    nn.TransformerEncoderBlock(4, 2, activation=jax.nn.relu, rngs=nnx.Rngs(0))(x)
    named = nn.TransformerEncoderBlock(4, 2, activation="gelu", rngs=nnx.Rngs(0))
    named.activation = jnp.tanh  # set after construction: the name no longer applies
    named(x)
    assert passed == ["ReLU", jax.nn.relu, jnp.tanh]
