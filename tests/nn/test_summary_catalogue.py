"""nn.summary lists the catalogue's modules, one row each, with their parameter counts."""

import jax.numpy as jnp
import pytest
from flax import nnx

from nnjax import nn


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_summary_shows_catalogue_modules_as_single_rows():
    r = nnx.Rngs(0)
    model = nn.Sequential(
        nn.Embedding(50, 16, rngs=r),
        nn.TransformerEncoderBlock(16, 4, mlp_features=32, rngs=r),
        nn.MultiHeadAttention(4, 16, rngs=r),
        nn.Bidirectional(16, 8, return_sequences=True, rngs=r),
        nn.Conv1D(16, 8, 3, rngs=r),
        nn.GroupNorm(8, num_groups=2, rngs=r),
        nn.PReLU(8, rngs=r),
        nn.MaxPool1D(2),
        nn.GlobalAvgPool(),
    )
    text = nn.summary(model, (2, 10), dtype=jnp.int32, print_fn=None)
    rows = [line.split() for line in text.splitlines() if line.startswith("layers/")]
    types = [row[1] for row in rows]
    assert types == [
        "Embedding", "TransformerEncoderBlock", "MultiHeadAttention", "Bidirectional",
        "Conv1D", "GroupNorm", "PReLU", "MaxPool1D", "GlobalAvgPool",
    ]  # fmt: skip
    counts = {row[1]: int(row[-1].replace(",", "")) for row in rows}
    attention = 4 * (16 * 16 + 16)
    assert counts["MultiHeadAttention"] == attention
    assert counts["TransformerEncoderBlock"] == attention + 2 * 32 + (16 * 32 + 32) * 2 - 16
    assert counts["Bidirectional"] == 2 * (16 * 32 + 8 * 32 + 32)
    assert "(2, 10, 16)" in text and "Output shape: (2, 8)" in text
    assert text.splitlines()[-1] == f"Total params: {nn.count_params(model):,}"
