"""The ops data-parallel, as ``fit`` runs them: a mesh with automatic axes, the batch split.

Under ``fit``'s mesh (``Auto`` axes over the devices, parameters replicated, each batch
split over ``'data'``) XLA partitions the program; an op whose formulation cannot keep
the batch split makes every device gather every row first and repeat the whole batch's
work. The compiled forward and backward pass of each op must communicate only to sum
the parameters' gradients (all-reduce), never gather the batch, and equal the op on one
device. Before the recurrences' weight gradients became one contraction over time and
batch, they flattened ``(T, B, *)`` to ``(T*B, *)``, and the LSTM and GRU gathered
their inputs and pre-activation gradients on every device (two all-gathers a step).
"""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._sharded_cases import CASES, collectives, collectives_in_loops, value_and_grads

# F.rnn differentiates its scan by autodiff, which accumulates the parameters' gradients
# in the reverse loop: XLA sums them over the devices at every step (a known cost; the
# LSTM and GRU ops and nn.RNN's Elman scan have their own backward pass and sum once).
PER_STEP_SUMS = {"rnn"}


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.asarray(jax.devices()[:2]), ("data",))


def test_collectives_are_found_in_hlo_text():
    text = "%ag = f32[4]{0} all-gather(%p), dimensions={0}\n%ar = f32[] all-reduce-start(%x)"
    assert collectives(text) == {"all-gather", "all-reduce"}
    module = (
        "%body (p: f32[]) -> f32[] {\n  %s = f32[] all-reduce(%p)\n}\n"
        "ENTRY %main (a: f32[]) -> f32[] {\n  %w = f32[] while(%a), condition=%c, body=%body\n"
        "  %g = f32[4] all-gather(%a)\n}\n"
    )
    assert collectives_in_loops(module) == {"all-reduce"}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_op_data_parallel_sums_gradients_and_never_gathers_the_batch(mesh, name):
    fn, params, x = CASES[name]
    sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
    replicated = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
    loss = lambda p, v: jax.numpy.sum(jax.numpy.sin(fn(p, v)))
    step = jax.jit(lambda p, v: (fn(p, v), jax.grad(loss, argnums=(0, 1))(p, v)))
    text = step.lower(replicated, sharded).compile().as_text()
    assert collectives(text) == {"all-reduce"}, f"{name}: {sorted(collectives(text))}"
    in_loops = collectives_in_loops(text)
    assert in_loops == ({"all-reduce"} if name in PER_STEP_SUMS else set()), name

    got, want = step(replicated, sharded), value_and_grads(fn, params, x)
    assert got[0].sharding.spec[0] == "data"  # the output stays split over the batch
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        b = np.asarray(b)
        # atol: some gradients are zero in exact arithmetic (attention's key bias)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6 + 1e-5 * np.abs(b).max())
