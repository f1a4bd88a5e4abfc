"""nnjax.save / nnjax.load round trips for the layer catalogue (nested parameter dicts)."""

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

CASES = {
    "attention": (lambda r: nn.MultiHeadAttention(2, 8, rngs=r), (2, 5, 8)),
    "transformer": (lambda r: nn.TransformerEncoderBlock(8, 2, mlp_features=16, rngs=r), (2, 5, 8)),
    "bidirectional": (lambda r: nn.Bidirectional(3, 4, cell="gru", rngs=r), (2, 5, 3)),
    "conv1d": (lambda r: nn.Conv1D(3, 4, 3, feature_group_count=1, rngs=r), (2, 7, 3)),
    "conv_transpose2d": (lambda r: nn.ConvTranspose2D(2, 3, 3, stride=2, rngs=r), (1, 4, 4, 2)),
    "group_norm": (lambda r: nn.GroupNorm(4, num_groups=2, rngs=r), (2, 3, 4)),
    "prelu": (lambda r: nn.PReLU(4, rngs=r), (2, 4)),
}


# The largest layers' round trips run in the slow step (measured among the slowest, 2026-12-01).
SLOW = {"attention", "conv1d", "conv_transpose2d", "transformer"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(CASES)]
)
def test_round_trip_is_bitwise(tmp_path, name):
    build, shape = CASES[name]
    model = build(nnx.Rngs(params=3, dropout=4))
    model.eval()
    params = nnx.state(model, nnx.Param)  # trained-looking weights no rebuild reproduces
    nnx.update(model, jax.tree.map(lambda a: a + 0.25, params))
    x = jax.random.normal(jax.random.key(0), shape)
    nnjax.save(model, tmp_path / name)
    loaded = nnjax.load(tmp_path / name)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded(x), model(x))
    same = jax.tree.map(
        np.array_equal, nnx.to_pure_dict(nnx.state(loaded)), nnx.to_pure_dict(nnx.state(model))
    )
    assert all(jax.tree.leaves(same))


def test_embedding_round_trip(tmp_path):
    model = nn.Embedding(10, 4, rngs=nnx.Rngs(1))
    nnjax.save(model, tmp_path / "e")
    ids = np.array([[1, 9, 0]])
    np.testing.assert_array_equal(nnjax.load(tmp_path / "e")(ids), model(ids))
