"""nn.Embedding's padding_idx: PyTorch's, through fit, saving and loading."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax
from nnjax import nn, train


class _Bag(nnx.Module):
    integer_inputs = ("ids",)

    def __init__(self, *, rngs):
        self.embed = nn.Embedding(7, 4, padding_idx=0, rngs=rngs)
        self.head = nn.Dense(4, 2, rngs=rngs)

    def __call__(self, ids):
        return self.head(self.embed(ids).sum(axis=1))


def test_the_padding_row_stays_zero_through_fit_and_a_save(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, (32, 5)).astype(np.int32)  # padding among the tokens
    labels = (ids.max(axis=1) > 4).astype(np.int32)
    model = _Bag(rngs=nnx.Rngs(0))
    train.fit(model, (ids, labels), loss="cross_entropy", optimizer=optax.adamw(1e-2),
              epochs=2, batch_size=8, verbose=0)  # fmt: skip
    table = np.asarray(model.embed.embedding[...])
    np.testing.assert_array_equal(table[0], 0.0)
    assert np.abs(table[1:]).min() > 0  # the other rows trained
    path = nnjax.save(model.embed, tmp_path / "embed")
    loaded = nnjax.load(path)
    assert loaded.padding_idx == 0
    grad = nnx.grad(lambda m: m(jnp.array([[0, 2]])).sum())(loaded)
    np.testing.assert_array_equal(grad["embedding"][...][0], 0.0)


def test_a_bad_padding_idx_is_refused_by_the_layer():
    with pytest.raises(ValueError, match=r"^Embedding: `padding_idx`=7 is outside \[-7, 7\)"):
        nn.Embedding(7, 4, padding_idx=7, rngs=nnx.Rngs(0))
    layer = nn.Embedding(7, 4, padding_idx=-1, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(layer.embedding[...][6], 0.0)
    assert jax.jit(lambda i: layer(i))(jnp.array([6])).sum() == 0
