"""The seedable batch iterator."""

from __future__ import annotations

import numpy as np
import pytest

from nnjax.data import batches, num_batches, permutation


@pytest.mark.parametrize(
    ("n", "bs", "drop"), [(10, 3, False), (10, 3, True), (9, 3, False), (2, 5, False)]
)
def test_every_example_once_and_count(n, bs, drop):
    x = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    out = list(batches(x, y, bs, seed=1, drop_remainder=drop))
    assert len(out) == num_batches(n, bs, drop_remainder=drop)
    seen = np.concatenate([yb for _, yb in out]) if out else np.array([], int)
    assert len(seen) == (n // bs * bs if drop else n) and len(set(seen.tolist())) == len(seen)
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)  # pairs stay together
        assert len(yb) <= bs and (not drop or len(yb) == bs)


def test_order_is_the_documented_permutation():
    y = np.arange(7)
    got = np.concatenate(list(batches(y, None, 3, seed=5, epoch=2)))
    np.testing.assert_array_equal(got, np.random.default_rng([5, 2]).permutation(7))
    np.testing.assert_array_equal(permutation(7, seed=5, epoch=2), got)


def test_resumable_and_epochs_differ():
    y = np.arange(50)
    first = [b.tolist() for b in batches(y, None, 8, seed=0, epoch=3)]
    again = [b.tolist() for b in batches(y, None, 8, seed=0, epoch=3)]
    other = [b.tolist() for b in batches(y, None, 8, seed=0, epoch=4)]
    assert first == again and first != other


def test_no_shuffle_keeps_order_and_dtypes():
    x = np.arange(5, dtype=np.uint8)
    y = np.arange(5, dtype=np.float16)
    out = list(batches(x, y, 2, shuffle=False))
    assert [xb.tolist() for xb, _ in out] == [[0, 1], [2, 3], [4]]
    assert out[0][0].dtype == np.uint8 and out[0][1].dtype == np.float16


@pytest.mark.parametrize(
    ("x", "y", "bs", "match"),
    [
        (np.zeros(4), np.zeros(3), 2, r"differ in length: x has shape \(4,\), y has shape \(3,\)"),
        (np.zeros(4), None, 0, "batch_size must be a positive integer, got 0"),
        (np.zeros(4), None, 2.5, "batch_size"),
        (np.zeros((0, 3)), None, 2, r"x is empty \(shape \(0, 3\)\)"),
        (np.float32(1.0), None, 2, "scalar"),
    ],
)
def test_bad_input_fails_at_the_call(x, y, bs, match):
    with pytest.raises(ValueError, match=match):
        batches(x, y, bs)  # no iteration needed


def test_num_batches_errors():
    with pytest.raises(ValueError, match="batch_size"):
        num_batches(10, -1)
    with pytest.raises(ValueError, match="num_examples"):
        num_batches(-1, 2)
