"""A non-finite loss from ids outside an Embedding's table names them, not the learning rate."""

import numpy as np
import pytest
from flax import nnx

from nnjax import nn, train
from nnjax.train.engine import NonFiniteLossError


class _Bag(nnx.Module):
    integer_inputs = ("ids",)

    def __init__(self, *, rngs):
        self.embed = nn.Embedding(9, 4, rngs=rngs)
        self.head = nn.Dense(4, 2, rngs=rngs)

    def __call__(self, ids):
        return self.head(self.embed(ids).mean(axis=1))


def _data(bad_id):
    ids = np.random.default_rng(0).integers(0, 9, (32, 6)).astype(np.int32)
    ids[5, 2] = bad_id
    return ids, (ids[:, 0] > 4).astype(np.int32)


@pytest.mark.parametrize("bad_id", [14, -3])
def test_an_out_of_vocabulary_id_is_named_as_the_cause(bad_id):
    model = _Bag(rngs=nnx.Rngs(0))
    before = np.asarray(model.embed.embedding[...])
    match = (
        r"lower the learning rate or clip gradients; or, if x \(example 5\) holds token "
        rf"ids: it holds {bad_id}, outside \[0, 9\), the rows of the model's Embedding"
    )
    with pytest.raises(NonFiniteLossError, match=match):
        train.fit(model, _data(bad_id), loss="cross_entropy", batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.embed.embedding[...], before)  # weights from before


def test_ids_in_range_leave_the_default_advice():
    from nnjax.train import nonfinite_causes
    from nnjax.train.data import ArraySource

    ids, labels = _data(3)
    source = ArraySource(ids, labels, batch_size=8)
    assert nonfinite_causes.input_cause(_Bag(rngs=nnx.Rngs(0)), source) is None
    assert nonfinite_causes.input_cause(nn.Dense(6, 2, rngs=nnx.Rngs(0)), source) is None
