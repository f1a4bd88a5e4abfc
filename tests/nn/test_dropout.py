import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import Dropout

from ._helpers import assert_jit_traces_once, param_dict


def test_train_draws_from_its_stream_like_f_dropout():
    layer = Dropout(0.5, rngs=nnx.Rngs(0))
    stream = nnx.Rngs(0)["dropout"].fork()
    x = jnp.arange(1.0, 13.0).reshape(3, 4)
    for _ in range(2):  # a fresh mask per call, each equal to F.dropout with the next key
        np.testing.assert_array_equal(layer(x), F.dropout(stream(), x, 0.5))
    assert param_dict(layer) == {}


def test_eval_is_identity_and_train_turns_it_back_on():
    layer = Dropout(0.5, rngs=nnx.Rngs(0))
    x = jnp.ones((4, 8))
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
    layer.train()
    y = layer(x)
    assert set(np.unique(y)) == {0.0, 2.0}


def test_spatial_dropout_drops_whole_channels():
    layer = Dropout(0.5, broadcast_dims=(1, 2), rngs=nnx.Rngs(1))
    y = layer(jnp.ones((4, 3, 3, 8)))
    per_channel = y.reshape(4, 9, 8)
    np.testing.assert_array_equal(per_channel.min(axis=1), per_channel.max(axis=1))
    assert 0 < float(jnp.mean(y == 0)) < 1


def test_rng_state_is_separable():
    layer = Dropout(0.5, rngs=nnx.Rngs(0))
    _, rng_state, rest = nnx.split(layer, nnx.RngState, ...)
    assert len(jax.tree.leaves(rng_state)) == 2
    assert jax.tree.leaves(rest) == []


def test_call_key_overrides_stream_and_no_stream_is_an_error():
    x = jnp.ones((2, 6))
    key = jax.random.key(5)
    np.testing.assert_array_equal(Dropout(0.3)(x, key=key), F.dropout(key, x, 0.3))
    with pytest.raises(ValueError, match="no RNG stream"):
        Dropout(0.3)(x)


@pytest.mark.parametrize(
    ("rate", "error"), [(-0.1, ValueError), (1.5, ValueError), ("half", TypeError)]
)
def test_bad_rate(rate, error):
    with pytest.raises(error, match="Dropout: `rate`"):
        Dropout(rate)


def test_missing_stream_is_a_clear_error():
    with pytest.raises(ValueError, match="'dropout'"):
        Dropout(0.5, rngs=nnx.Rngs(params=0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(Dropout(0.5, rngs=nnx.Rngs(0)), jnp.ones((2, 3)))


def test_nnx_view_sets_deterministic_without_touching_the_original():
    layer = Dropout(0.5, rngs=nnx.Rngs(0))
    view = nnx.view(layer, deterministic=True)
    x = jnp.ones((2, 8))
    np.testing.assert_array_equal(view(x), x)
    assert layer.deterministic is False


def test_rngs_at_call_draw_as_flaxs_dropout_does():
    """``layer(x, rngs=...)``, Flax's call: the same masks as ``nnx.Dropout`` from equal
    streams, a new one per call (it was a TypeError)."""
    x = jnp.ones((4, 8))
    ours, theirs = nnx.Rngs(dropout=3), nnx.Rngs(dropout=3)
    layer, flax_layer = Dropout(0.5), nnx.Dropout(0.5)
    first, second = layer(x, rngs=ours), layer(x, rngs=ours)
    np.testing.assert_array_equal(first, flax_layer(x, rngs=theirs))
    np.testing.assert_array_equal(second, flax_layer(x, rngs=theirs))
    assert not np.array_equal(first, second)
    stream = nnx.Rngs(dropout=3).dropout
    np.testing.assert_array_equal(layer(x, rngs=stream), first)  # a stream itself
    with pytest.raises(ValueError, match="pass `key` or `rngs`, not both"):
        layer(x, rngs=ours, key=jax.random.key(0))
    with pytest.raises(ValueError, match="has no 'dropout'"):
        layer(x, rngs=nnx.Rngs(params=0))
