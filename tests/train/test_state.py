"""Tests for nnjax.train.state: the data order of each epoch and padded batches."""

import numpy as np

from nnjax.train.state import TrainState, epoch_batches, padded_batches


def test_epoch_batches_is_a_function_of_seed_and_epoch():
    a = epoch_batches(1, 3, 10, 3)
    np.testing.assert_array_equal(a, epoch_batches(1, 3, 10, 3))
    assert a.shape == (3, 3) and len(set(a.ravel())) == 9
    assert not np.array_equal(a, epoch_batches(1, 4, 10, 3))
    assert not np.array_equal(a, epoch_batches(2, 3, 10, 3))
    np.testing.assert_array_equal(epoch_batches(0, 0, 7, 3, shuffle=False), [[0, 1, 2], [3, 4, 5]])


def test_padded_batches_cover_every_example_once():
    batches = padded_batches(7, 3)
    idx = np.concatenate([i for i, _ in batches])
    mask = np.concatenate([m for _, m in batches])
    assert idx.shape == (9,)
    np.testing.assert_array_equal(np.sort(idx[mask == 1]), np.arange(7))
    assert mask.sum() == 7


def test_train_state_is_a_pytree():
    import jax

    state = TrainState({"w": np.ones(2)}, (np.zeros(1),), {})
    assert len(jax.tree.leaves(state)) == 2
