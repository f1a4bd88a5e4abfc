"""Host-stacked batches are bounded in bytes: fewer per dispatch, fewer queued.

``fit``, ``evaluate``, ``predict`` and ``sweep`` stack 8 batches a dispatch and keep 8
dispatches queued. For data read on the host (iterables, memmaps, ``evaluate``'s
blocks) with large batches that is many copies of the input in memory, so the default
``K`` is cut to :data:`nnjax.train.in_flight.DISPATCH_BYTES` a dispatch and the queue's
depth to :data:`~nnjax.train.in_flight.QUEUE_BYTES`. These tests shrink the budgets to
a few of the tiny batches' bytes.
"""

import jax
import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.train import compiled, eval_blocks, in_flight, sharding, sweep_feeder
from nnjax.train.data import ArraySource
from nnjax.train.feeder import DeviceFeeder, default_steps
from nnjax.train.iterable_source import IterableSource
from nnjax.train.sweep import grid, sweep
from tests.train._data import blobs, leaves, mlp

N, BATCH = 96, 8  # 12 batches


def _batches(x, y):
    return [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)]


def _batch_bytes(x, y):
    return in_flight.nbytes(IterableSource(_batches(x, y)).example())


def _recording_k(monkeypatch):
    """Records the ``k`` of every compiled train dispatch and counts its calls."""
    ks, calls = [], []
    real = compiled.compiled_train

    def spy(*args, **kwargs):
        ks.append(args[4])
        fn = real(*args, **kwargs)

        def counted(*call_args):
            calls.append(1)
            return fn(*call_args)

        return counted

    monkeypatch.setattr(compiled, "compiled_train", spy)
    return ks, calls


def test_steps_within_and_depth_for_stay_in_their_bounds():
    assert in_flight.steps_within(8, 10, budget=35) == 3
    assert in_flight.steps_within(8, 10, budget=1000) == 8  # never above k
    assert in_flight.steps_within(8, 10**12) == 1  # at least one batch
    assert in_flight.steps_within(8, 0) == 8
    assert in_flight.depth_for(0) == in_flight.DEPTH  # indices only
    assert in_flight.depth_for(10, budget=1000) == in_flight.DEPTH  # never above DEPTH
    assert in_flight.depth_for(10, budget=60) == 6 - in_flight.PREFETCHED - 1
    assert in_flight.depth_for(10**12) == 1
    assert in_flight.nbytes({"a": np.zeros((3, 2), np.float32), "b": None, "c": 2}) == 24


def test_fit_over_an_iterable_stacks_only_what_fits_in_the_dispatch_budget(monkeypatch):
    x, y = blobs(n=N)
    monkeypatch.setattr(in_flight, "DISPATCH_BYTES", 3 * _batch_bytes(x, y) + 1)
    ks, calls = _recording_k(monkeypatch)
    cut = mlp(seed=1)
    T.fit(cut, _batches(x, y), loss="cross_entropy", optimizer=optax.adam(1e-2), verbose=0)
    assert ks == [3] and len(calls) == 4  # 12 batches, 3 a dispatch
    explicit = mlp(seed=1)  # the same updates as an explicit steps_per_dispatch=3
    T.fit(explicit, _batches(x, y), loss="cross_entropy", optimizer=optax.adam(1e-2),
          verbose=0, steps_per_dispatch=3)  # fmt: skip
    for a, b in zip(leaves(cut), leaves(explicit), strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    eight = mlp(seed=1)  # the default budget: 8 a dispatch, the same run
    T.fit(eight, _batches(x, y), loss="cross_entropy", optimizer=optax.adam(1e-2), verbose=0)
    for a, b in zip(leaves(cut), leaves(eight), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_arrays_kept_on_the_device_and_explicit_steps_are_not_cut(monkeypatch):
    x, y = blobs(n=N)
    monkeypatch.setattr(in_flight, "DISPATCH_BYTES", 1)
    ks, _ = _recording_k(monkeypatch)
    T.fit(mlp(), (x, y), loss="cross_entropy", batch_size=BATCH, verbose=0)  # indices only
    T.fit(mlp(), _batches(x, y), loss="cross_entropy", verbose=0, steps_per_dispatch=5)
    assert ks == [8, 5]


def test_large_dispatches_queue_fewer_behind_the_one_waited_for(monkeypatch):
    x, y = blobs(n=N)
    depths = []
    real = in_flight.throttle

    def spy(outputs, depth=in_flight.DEPTH):
        depths.append(depth)
        return real(outputs, depth)

    monkeypatch.setattr(in_flight, "throttle", spy)
    dispatch = 8 * _batch_bytes(x, y)
    monkeypatch.setattr(in_flight, "QUEUE_BYTES", dispatch * (in_flight.PREFETCHED + 3))
    T.fit(mlp(), _batches(x, y), loss="cross_entropy", verbose=0, steps_per_dispatch=1)
    T.fit(mlp(), _batches(x, y), loss="cross_entropy", verbose=0)
    T.fit(mlp(), (x, y), loss="cross_entropy", batch_size=BATCH, verbose=0)
    # one batch a dispatch: 8 fit; 8 batches: 2; rows gathered on the device: always 8
    assert depths == [8] * 12 + [2] * 2 + [8] * 2


def test_a_feeders_depth_is_the_queue_budget_over_its_stack(monkeypatch):
    x, y = blobs(n=N)
    mesh = sharding.make_mesh(jax.devices()[:1])
    source = IterableSource(_batches(x, y))
    monkeypatch.setattr(in_flight, "QUEUE_BYTES", 4 * 7 * _batch_bytes(x, y))
    assert DeviceFeeder(source, mesh, 4).depth == 7 - in_flight.PREFETCHED - 1
    assert DeviceFeeder(source, mesh, 1).depth == in_flight.DEPTH
    monkeypatch.setattr(in_flight, "DISPATCH_BYTES", 2 * _batch_bytes(x, y))
    assert default_steps(8, source, mesh) == 2
    assert default_steps(8, source, mesh, on_device=True) == 8


def test_evaluate_and_predict_compute_fewer_large_batches_a_dispatch(monkeypatch):
    x, y = blobs(n=N + 3)  # the last dispatch padded
    model = mlp(seed=2)
    expected = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=BATCH)
    predicted = T.predict(model, x, batch_size=BATCH)
    monkeypatch.setattr(in_flight, "DISPATCH_BYTES", 2 * _batch_bytes(x, y))
    ks = []
    real = eval_blocks.DeviceFeeder

    def spy(source, mesh, k, **kwargs):
        ks.append(k)
        return real(source, mesh, k, **kwargs)

    monkeypatch.setattr(eval_blocks, "DeviceFeeder", spy)
    logs = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=BATCH)
    np.testing.assert_allclose(T.predict(model, x, batch_size=BATCH), predicted, atol=1e-7)
    assert ks == [2, 2]
    np.testing.assert_allclose(logs["loss"], expected["loss"], rtol=1e-6, atol=1e-7)
    assert logs["accuracy"] == expected["accuracy"]


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize("mode", ["shared", "members"])
def test_a_sweeps_members_share_the_dispatch_budget(monkeypatch, tmp_path, mode):
    x, y = blobs(n=N)
    if mode == "members":  # a memmap: each member's batches read for it
        path = tmp_path / "x.npy"
        np.save(path, x)
        data, batching, source = (np.load(path, mmap_mode="r"), y), {"batch_size": BATCH}, None
        source = ArraySource(*data, batch_size=BATCH)
    else:  # an iterable: one stack for every member
        data, batching = _batches(x, y), {}
        source = IterableSource(data)
    assert sweep_feeder.feed_mode(source, sharding.make_mesh(jax.devices()[:1])) == mode
    source_bytes = _batch_bytes(x, y)
    monkeypatch.setattr(in_flight, "DISPATCH_BYTES", 4 * source_bytes)
    ks = []
    real = sweep_feeder.SweepFeeder.__init__

    def spy(self, source, seeds, k, mesh):
        ks.append(k)
        real(self, source, seeds, k, mesh)

    monkeypatch.setattr(sweep_feeder.SweepFeeder, "__init__", spy)
    members = grid(seeds=[0, 1], learning_rate=[1e-2])
    kwargs = dict(loss="cross_entropy", optimizer=optax.adam, members=members, epochs=1)
    result = sweep(lambda rngs: mlp(seed=0), data, **batching, **kwargs)
    assert ks == ([4] if mode == "shared" else [2])  # members mode: 2 members' batches
    explicit = sweep(lambda rngs: mlp(seed=0), data, steps_per_dispatch=ks[0], **batching,
                     **kwargs)  # fmt: skip
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(explicit.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
