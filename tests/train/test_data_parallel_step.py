"""``fit``'s compiled train step over several devices: gradients summed, batches never gathered.

``fit`` splits each batch over the ``'data'`` axis of a mesh of every device and keeps
the state replicated (``nnjax.train.sharding``). The step of each model kind, compiled
as ``fit`` compiles it for four (fake CPU) devices, must communicate only to sum
gradients and metrics (all-reduce); a gather of the batch would mean every device
repeats the whole batch's work (the LSTM and GRU steps did, before their weight
gradients contracted time and batch in one ``dot_general``). And only once, at the end:
the loss's normalizer summed before the backward pass made the devices wait for each
other mid-step (a 2-CPU-device LSTM ``fit`` step took 1.35x as long).
"""

import re

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

from nnjax import nn
from nnjax.train import compiled, sharding
from nnjax.train.data import Batch
from nnjax.train.state import TrainState
from nnjax.train.step import split_model
from tests.functional._sharded_cases import collectives, collectives_in_loops


class BiRNN(nnx.Module):
    """A bidirectional recurrence (both directions' last outputs) and a dense head."""

    def __init__(self, cell: str, rngs: nnx.Rngs):
        self.rnn = nn.Bidirectional(3, 4, cell=cell, rngs=rngs)
        self.head = nn.Dense(8, 2, rngs=rngs)

    def __call__(self, x):
        return self.head(self.rnn(x))


MODELS = {
    "lstm": (lambda: nn.SequenceClassifier(3, 4, 2, rngs=nnx.Rngs(0)), (5, 3)),
    "gru": (lambda: nn.SequenceClassifier(3, 4, 2, cell="gru", rngs=nnx.Rngs(0)), (5, 3)),
    "cnn": (
        lambda: nn.CNN((8, 8, 1), 2, conv_features=(4,), dense=(8,), rngs=nnx.Rngs(0)),
        (8, 8, 1),
    ),
    "mlp": (lambda: nn.MLP(3, (8,), 2, rngs=nnx.Rngs(0)), (3,)),
    "bidirectional_gru": (lambda: BiRNN("gru", nnx.Rngs(0)), (5, 3)),
    "bidirectional_rnn": (lambda: BiRNN("rnn", nnx.Rngs(0)), (5, 3)),
    "elman": (lambda: nn.SequenceClassifier(3, 4, 2, cell="rnn", rngs=nnx.Rngs(0)), (5, 3)),
}


@pytest.mark.devices(4)
@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.slow
def test_fits_step_over_four_devices_only_sums(kind):
    factory, shape = MODELS[kind]
    assert jax.device_count() == 4  # tests/conftest.py
    graphdef, params, rest = split_model(factory())
    tx = optax.adam(1e-3)
    mesh = sharding.make_mesh(jax.devices())
    fn = compiled.compiled_train(graphdef, "cross_entropy", tx, (), 1, mesh, False)
    x, y, ones = jnp.ones((1, 8, *shape)), jnp.zeros((1, 8), jnp.int32), jnp.ones((1, 8))
    batch = sharding.put_batch(Batch(x, y, ones, ones), mesh)
    state = sharding.put_replicated(TrainState(params, tx.init(params), rest), mesh)
    leaves, treedef = jax.tree.flatten(state)
    text = fn.lower(treedef, leaves, batch, 1).compile().as_text()
    assert collectives(text) == {"all-reduce"}, kind
    assert not collectives_in_loops(text), kind  # gradients summed once, not every step
    # one all-reduce in all, after the backward pass: the loss normalizer (the count of
    # real examples) travels with the gradients, no barrier between the devices mid-step
    assert len(re.findall(r" all-reduce(?:-start)?\(", text)) == 1, kind
