"""nnjax.distributed.arrays and partition in one process.

The multi-process paths: ``test_two_process_fit.py``.
"""

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nnjax.distributed import arrays, partition


def _mesh(shape=(4,), axes=("data",)):
    return Mesh(np.asarray(jax.devices()).reshape(shape), axes)


@pytest.mark.devices(4)
def test_put_places_shards_without_aliasing_and_to_host_reads_them_back():
    x = np.arange(24.0, dtype=np.float32).reshape(8, 3)
    placed = arrays.put({"x": x, "key": jax.random.key(1)}, NamedSharding(_mesh(), P()))
    assert placed["x"].is_fully_replicated and placed["key"].is_fully_replicated
    split = arrays.put(x, NamedSharding(_mesh(), P("data")))
    assert [s.data.shape for s in split.addressable_shards] == [(2, 3)] * 4
    np.testing.assert_array_equal(arrays.to_host(split), x)
    again = arrays.put(split, NamedSharding(_mesh(), P()))  # device input, new layout
    assert again.is_fully_replicated
    np.testing.assert_array_equal(arrays.to_host(again), x)


@pytest.mark.devices(4)
def test_put_copies_a_tree_in_one_program_without_aliasing(monkeypatch):
    calls = []
    device_put = jax.device_put

    def counted(*args, **kwargs):
        calls.append(args[0])
        return device_put(*args, **kwargs)

    monkeypatch.setattr(jax, "device_put", counted)
    mesh = _mesh()
    tree = {"a": jax.numpy.arange(8.0), "b": [np.ones((4, 2)), jax.random.key(0)], "c": None}
    specs = {"a": NamedSharding(mesh, P("data")), "b": [NamedSharding(mesh, P())] * 2, "c": None}
    placed = arrays.put(tree, specs)
    assert len(calls) == 1 and len(calls[0]) == 1  # the key; the arrays in one program
    assert placed["a"].sharding == specs["a"] and placed["b"][0].sharding == specs["b"][0]
    assert [s.data.shape for s in placed["a"].addressable_shards] == [(2,)] * 4
    assert placed["b"][0].is_fully_replicated and placed["c"] is None
    placed["a"].delete()  # the input's buffer is another one
    np.testing.assert_array_equal(np.asarray(tree["a"]), np.arange(8.0))
    key_data = [jax.random.key_data(k).tolist() for k in (placed["b"][1], tree["b"][1])]
    assert key_data[0] == key_data[1]
    with pytest.raises(ValueError):
        arrays.put(tree, {"a": specs["a"]})  # shardings that do not match the tree


@pytest.mark.devices(4)
def test_repeated_puts_feed_a_program_without_new_cache_entries():
    mesh = _mesh()
    everywhere = NamedSharding(mesh, P())
    tree = [jax.numpy.ones(3), np.zeros((2, 2), np.float32), jax.random.key(1)]
    consume = jax.jit(lambda t: jax.random.uniform(t[2]) * t[0].sum() + t[1].sum())
    for _ in range(3):  # the copy program's first run, then its cached runs
        consume(arrays.put(tree, everywhere))
    assert consume._cache_size() == 1


@pytest.mark.devices(4)
def test_put_without_copy_keeps_what_is_already_placed_and_places_the_rest():
    mesh = _mesh()
    rows, everywhere = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    split = arrays.put(np.arange(8.0, dtype=np.float32), rows)
    one = jax.device_put(np.ones(3, np.float32), jax.devices()[0])  # one device only
    host = np.zeros((2, 2), np.float32)
    tree = {"split": split, "one": one, "host": host}
    placed = arrays.put(tree, {"split": rows, "one": everywhere, "host": everywhere}, copy=False)
    assert placed["split"] is split  # already laid out as asked: not copied
    assert placed["one"] is not one and placed["one"].is_fully_replicated
    assert placed["host"].is_fully_replicated
    copied = arrays.put(tree, {"split": rows, "one": everywhere, "host": everywhere})
    assert copied["split"] is not split  # the default copies (for donation)
    # replicated on a one-device mesh is the same layout as a plain one-device array
    single = NamedSharding(Mesh(np.asarray(jax.devices()[:1]), ("data",)), P())
    assert arrays.put(one, single, copy=False) is one


@pytest.mark.devices(4)
def test_process_rows_of_one_process_is_the_whole_batch():
    sharding = NamedSharding(_mesh((2, 2), ("data", "model")), P("data"))
    assert arrays.process_rows(sharding, 8) == slice(0, 8)
    batch = arrays.put_local(np.ones((8, 2)), sharding, 8)
    assert batch.shape == (8, 2)
    assert [s.data.shape for s in batch.addressable_shards] == [(4, 2)] * 4


@pytest.mark.parametrize(
    ("shape", "size", "spec"),
    [
        ((8, 32), 4, P(None, "data")),  # the largest dimension that 4 divides
        ((32, 8), 4, P("data", None)),
        ((8, 8), 4, P("data", None)),  # ties: the first
        ((6, 10), 4, P()),  # nothing divides: replicated
        ((), 4, P()),
        ((2,), 4, P()),  # smaller than the axis
        ((12, 3), 1, P()),  # one device: nothing to split
    ],
)
def test_fsdp_rule(shape, size, spec):
    assert partition.fsdp_spec(shape, size) == spec


def test_rule_specs_first_match_wins_and_optimizer_state_follows():
    params = {"dense": {"kernel": np.zeros((4, 8)), "bias": np.zeros(8)}}
    rules = [(r"kernel", P(None, "model")), (r"dense/", P("model"))]
    specs = partition.rule_specs(params, rules, {"data": 2, "model": 2})
    assert specs == {"dense": {"kernel": P(None, "model"), "bias": P("model")}}
    opt = {"count": np.zeros(()), "mu": params, "other": np.zeros((8, 4))}
    follows = partition.follow_specs(opt, params, specs)
    assert follows["mu"] == specs and follows["count"] == P() and follows["other"] == P()


@pytest.mark.parametrize(
    ("rules", "error", "match"),
    [
        ("kernel", TypeError, "sequence of .regex, PartitionSpec. pairs"),
        ([("kernel", ("model",))], TypeError, "a .regex, PartitionSpec. pair"),
        ([("kernel", P("model"))], ValueError, "axis 'model' of .* not an axis"),
        ([("(", P("data"))], ValueError, "is not a regex"),
        ([("kernel", P(None, "data"))], ValueError, r"dimension 1 of shape \(4, 3\)"),
    ],
)
def test_bad_rules_are_named(rules, error, match):
    with pytest.raises(error, match=match):
        partition.rule_specs({"kernel": np.zeros((4, 3))}, rules, {"data": 2})
