"""The ops under a mesh with explicit axes (``jax.set_mesh``), the batch sharded.

Forward values and gradients (for the replicated parameters and the input) equal those
of the same jitted function without a mesh, and the outputs keep the batch's sharding.
Four fake CPU devices (``tests/conftest.py``); the mesh uses two, and the tests that need
it skip where JAX has fewer (one GPU). Before these ops took the batch's sharding along,
the recurrences, pooling and transposed convolutions raised ``ShardingTypeError`` there
(jax 0.10.2, whose ``jax.make_mesh`` makes explicit axes).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from nnjax.functional import _sharding

from ._sharded_cases import CASES, SEQ, value_and_grads

MESH_DEVICES = 2
"""The mesh's size: the batch (4 rows) split in two."""


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((MESH_DEVICES,), ("batch",), axis_types=(AxisType.Explicit,))


@pytest.mark.devices(MESH_DEVICES)
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_op_under_explicit_batch_sharding_matches_the_unsharded_op(mesh, name):
    fn, params, x = CASES[name]
    want = value_and_grads(fn, params, x)
    with jax.set_mesh(mesh):
        sharded = jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
        replicated = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
        got = value_and_grads(fn, replicated, sharded)
    assert got[0].sharding.spec[0] == "batch"  # the output stays sharded over the batch
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        b = np.asarray(b)
        # atol: some gradients are zero in exact arithmetic (attention's key bias)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-6 + 1e-5 * np.abs(b).max())


def test_helpers_change_nothing_without_a_mesh():
    x = jnp.ones((4, 3))
    assert _sharding.batch_axis(x) is None
    assert _sharding.like_batch(x, None) is x
    assert _sharding.batch_sharded(jnp.sin, None, 2) is jnp.sin
    assert _sharding.batch_spec(None, 2) is None and _sharding.replicated(None) is None


@pytest.mark.devices(MESH_DEVICES)
def test_helpers_see_no_batch_axis_under_a_mesh_without_explicit_axes():
    x = jnp.ones((4, 3))
    auto = jax.make_mesh((MESH_DEVICES,), ("batch",), axis_types=(AxisType.Auto,))
    with jax.set_mesh(auto):
        sharded = jax.device_put(x, NamedSharding(auto, PartitionSpec("batch")))
        assert jax.jit(lambda v: jnp.float32(_sharding.batch_axis(v) is None))(sharded) == 1.0


@pytest.mark.devices(MESH_DEVICES)
def test_carry_is_resharded_like_the_batch(mesh):
    seen = {}

    @jax.jit
    def zeros_like_batch(v):
        seen["axis"] = axis = _sharding.batch_axis(v)
        return _sharding.like_batch(jnp.zeros((4, 8)), axis)

    with jax.set_mesh(mesh):
        zeros = zeros_like_batch(jax.device_put(SEQ, NamedSharding(mesh, PartitionSpec("batch"))))
    assert seen["axis"] == "batch" and zeros.sharding.spec[0] == "batch"
