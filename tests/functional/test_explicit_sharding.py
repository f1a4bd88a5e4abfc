"""The ops under a mesh with explicit axes (``jax.set_mesh``), the batch sharded.

Forward values and gradients (for the replicated parameters and the input) equal those
of the same jitted function without a mesh, and the outputs keep the batch's sharding.
Four fake CPU devices (``tests/conftest.py``); the mesh uses two. Before these ops took
the batch's sharding along, the recurrences, pooling and transposed convolutions raised
``ShardingTypeError`` there (jax 0.10.2, whose ``jax.make_mesh`` makes explicit axes).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

import nnjax.functional as F
from nnjax.functional import _sharding

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
SEQ = RNG.standard_normal((4, 5, 6)).astype(np.float32)
IMG = RNG.standard_normal((4, 8, 8, 3)).astype(np.float32)
LENGTHS = np.array([5, 3, 4, 2])

CASES = {
    "dense": (lambda p, x: F.dense(p, x), F.dense_init(KEY, 6, 3), SEQ[:, 0]),
    "conv2d": (lambda p, x: F.conv2d(p, x), F.conv2d_init(KEY, 3, 4, 3), IMG),
    "conv2d_xla": (
        lambda p, x: F.conv2d(p, x, formulation="xla"),
        F.conv2d_init(KEY, 3, 4, 3),
        IMG,
    ),
    "conv_transpose2d": (
        lambda p, x: F.conv_transpose2d(p, x, stride=2),
        F.conv_transpose2d_init(KEY, 3, 4, 3),
        IMG,
    ),
    "rnn": (lambda p, x: F.rnn(F.rnn_cell, p, x)[1], F.rnn_cell_init(KEY, 6, 8), SEQ),
    "lstm": (lambda p, x: F.lstm(p, x)[1], F.lstm_cell_init(KEY, 6, 8), SEQ),
    "lstm_lengths": (
        lambda p, x: F.lstm(p, x, lengths=LENGTHS)[1],
        F.lstm_cell_init(KEY, 6, 8),
        SEQ,
    ),
    "gru": (lambda p, x: F.gru(p, x)[1], F.gru_cell_init(KEY, 6, 8), SEQ),
    "bidirectional": (
        lambda p, x: F.bidirectional(F.lstm_cell, p, x)[1],
        F.bidirectional_init(KEY, F.lstm_cell_init, 6, 8),
        SEQ,
    ),
    "max_pool2d": (lambda p, x: F.max_pool2d(x, 2) * p, jnp.float32(2.0), IMG),
    "avg_pool2d": (lambda p, x: F.avg_pool2d(x, 2) * p, jnp.float32(2.0), IMG),
    "layer_norm": (lambda p, x: F.layer_norm(p, x), F.layer_norm_init(KEY, 6), SEQ),
    "attention": (
        lambda p, x: F.multi_head_attention(p, x),
        F.multi_head_attention_init(KEY, 6, num_heads=2),
        SEQ,
    ),
}


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((2,), ("batch",), axis_types=(AxisType.Explicit,))


def _value_and_grads(fn, params, x):
    loss = lambda p, v: jnp.sum(jnp.sin(fn(p, v)))
    return jax.jit(lambda p, v: (fn(p, v), jax.grad(loss, argnums=(0, 1))(p, v)))(params, x)


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_under_explicit_batch_sharding_matches_the_unsharded_op(mesh, name):
    fn, params, x = CASES[name]
    want = _value_and_grads(fn, params, x)
    with jax.set_mesh(mesh):
        sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
        replicated = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
        got = _value_and_grads(fn, replicated, sharded)
    assert got[0].sharding.spec[0] == "batch"  # the output stays sharded over the batch
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        b = np.asarray(b)
        # atol: some gradients are zero in exact arithmetic (attention's key bias)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6 + 1e-5 * np.abs(b).max())


def test_helpers_change_nothing_without_explicit_axes():
    x = jnp.ones((4, 3))
    assert _sharding.batch_axis(x) is None
    assert _sharding.like_batch(x, None) is x
    assert _sharding.batch_sharded(jnp.sin, None, 2) is jnp.sin
    assert _sharding.batch_spec(None, 2) is None and _sharding.replicated(None) is None
    auto = jax.make_mesh((2,), ("batch",), axis_types=(AxisType.Auto,))
    with jax.set_mesh(auto):
        sharded = jax.device_put(x, NamedSharding(auto, PartitionSpec("batch")))
        assert jax.jit(lambda v: jnp.float32(_sharding.batch_axis(v) is None))(sharded) == 1.0


def test_carry_is_resharded_like_the_batch(mesh):
    seen = {}

    @jax.jit
    def zeros_like_batch(v):
        seen["axis"] = axis = _sharding.batch_axis(v)
        return _sharding.like_batch(jnp.zeros((4, 8)), axis)

    with jax.set_mesh(mesh):
        zeros = zeros_like_batch(jax.device_put(SEQ, NamedSharding(mesh, PartitionSpec("batch"))))
    assert seen["axis"] == "batch" and zeros.sharding.spec[0] == "batch"
