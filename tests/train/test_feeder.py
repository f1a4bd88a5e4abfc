"""The device feeder's index blocks: one transfer per epoch, dispatch ``j`` names block ``j``."""

import jax
import numpy as np
import pytest

import nnjax.train as T
from nnjax.train import feeder as feeder_lib
from nnjax.train import sharding
from nnjax.train.data import ArraySource, epoch_index
from nnjax.train.feeder import DeviceFeeder, in_blocks, index_chunks
from tests.train._data import blobs, mlp


@pytest.mark.parametrize("lead", [(), (3,)])
def test_in_blocks_splits_the_steps_and_pads_the_last_block_with_masked_row_zero(lead):
    rng = np.random.default_rng(0)
    idx = rng.integers(1, 50, (*lead, 7, 4))
    mask = rng.integers(0, 2, (*lead, 7, 4)).astype(np.float64)
    blocks, masks = in_blocks(idx, mask, 3)
    assert blocks.shape == masks.shape == (*lead, 3, 3, 4)
    assert blocks.dtype == np.int32 and masks.dtype == np.float32
    flat = blocks.reshape(*lead, 9, 4)
    np.testing.assert_array_equal(flat[..., :7, :], idx)
    np.testing.assert_array_equal(masks.reshape(*lead, 9, 4)[..., :7, :], mask)
    assert not flat[..., 7:, :].any() and not masks.reshape(*lead, 9, 4)[..., 7:, :].any()


def test_in_blocks_of_an_exact_multiple_adds_no_padding():
    idx, mask = in_blocks(np.arange(8).reshape(4, 2), np.ones((4, 2)), 2)
    assert idx.shape == (2, 2, 2) and mask.all()


def test_index_chunks_put_the_epoch_once_split_over_the_data_axis():
    mesh = sharding.make_mesh(jax.devices()[:4])
    idx, mask = epoch_index(0, 0, 37, 8)  # 5 batches of 8, the last with 5 examples
    chunks = list(index_chunks("data", idx, mask, 2, mesh))
    assert [c.args[3] for c in chunks] == [0, 1, 2]
    assert [(c.steps, c.examples) for c in chunks] == [(2, 16), (2, 16), (1, 5)]
    placed = chunks[0].args[1]
    assert all(c.args[1] is placed and c.args[0] == "data" for c in chunks)
    assert placed.shape == (3, 2, 8)
    assert placed.sharding.spec == jax.sharding.PartitionSpec(None, None, "data")
    np.testing.assert_array_equal(np.asarray(placed).reshape(6, 8)[:5], idx)


def test_a_sweeps_chunk_counts_one_members_examples():
    mesh = sharding.make_mesh(jax.devices()[:1])
    idx = np.stack([epoch_index(s, 0, 10, 4)[0] for s in (0, 1)])
    mask = np.stack([epoch_index(s, 0, 10, 4)[1] for s in (0, 1)])
    chunks = list(index_chunks(None, idx, mask, 2, mesh))
    assert [(c.steps, c.examples) for c in chunks] == [(2, 8), (1, 2)]
    assert chunks[0].args[1].shape == (2, 2, 2, 4)


def test_fit_transfers_the_row_indices_once_per_epoch_not_per_dispatch(monkeypatch):
    calls = []
    put = sharding.put_batch

    def counting(tree, *args, **kwargs):
        calls.append(jax.tree.map(np.shape, tree))
        return put(tree, *args, **kwargs)

    monkeypatch.setattr(feeder_lib.sharding, "put_batch", counting)
    x, y = blobs(n=96)
    src = ArraySource(x, y, batch_size=8)
    assert DeviceFeeder(src, sharding.make_mesh(jax.devices()[:1]), k=1).gather
    T.fit(mlp(), (x, y), loss="cross_entropy", batch_size=8, epochs=3, verbose=0,
          steps_per_dispatch=1, devices=jax.devices()[:2])  # fmt: skip
    assert calls == [((12, 1, 8), (12, 1, 8))] * 3  # 12 dispatches an epoch, 3 epochs


@pytest.mark.parametrize("part", [None, slice(1, 3)])
def test_array_blocks_hold_the_batches_that_stacking_them_gave(part):
    """One gather per dispatch: the same rows, targets, weights and masks as before."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((11, 3)).astype(np.float32), np.arange(11)
    src = ArraySource({"a": x}, y, batch_size=4, weight=rng.uniform(size=11).astype(np.float32))
    blocks = list(feeder_lib.array_blocks(src, 5, 2, 2, part=part))
    batches = list(src.batches(5, 2, part=part))
    assert [n for _, n in blocks] == [2, 1]
    for j, (block, n) in enumerate(blocks):
        for i in range(n):  # the real steps: exactly the batches of the epoch
            expected = batches[2 * j + i]
            np.testing.assert_array_equal(block.x["a"][i], expected.x["a"])
            np.testing.assert_array_equal(block.y[i], expected.y)
            np.testing.assert_array_equal(block.weight[i], expected.weight)
            np.testing.assert_array_equal(block.mask[i], expected.mask)
    padding = blocks[1][0]  # the last block's second batch: no update
    assert not padding.mask[1].any() and not padding.weight[1].any()


def test_a_memmap_feeds_one_gather_per_dispatch(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(40, dtype=np.float32).reshape(20, 2))
    src = ArraySource(np.load(path, mmap_mode="r"), np.arange(20), batch_size=4)
    reads = []
    batch = src.batch
    monkeypatch.setattr(
        src, "batch", lambda rows, mask: reads.append(len(rows)) or batch(rows, mask)
    )
    mesh = sharding.make_mesh(jax.devices()[:1])
    chunks = list(DeviceFeeder(src, mesh, k=2).epoch(seed=0, epoch=0))
    assert reads == [8, 8, 8] and [c.steps for c in chunks] == [2, 2, 1]
    assert [c.examples for c in chunks] == [8, 8, 4]
    rows = np.concatenate([np.asarray(c.args[0].x)[: c.steps].reshape(-1, 2) for c in chunks])
    assert sorted(rows[:, 0].tolist()) == list(range(0, 40, 2))  # every example once
