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
        (np.zeros(4), None, 0, "batches: `batch_size` must be a positive int, got 0"),
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


def test_drop_remainder_with_batch_larger_than_data_raises():
    """W4: it used to yield nothing, so a training loop ran zero steps."""
    with pytest.raises(ValueError, match=r"`batch_size` 100 is larger than the 10 examples"):
        batches(np.zeros((10, 2)), np.arange(10), 100, drop_remainder=True)
    assert len(list(batches(np.zeros((10, 2)), None, 100))) == 1  # without dropping: one batch
    assert len(list(batches(np.zeros((10, 2)), None, 10, drop_remainder=True))) == 1


_X = np.zeros((10, 2))


@pytest.mark.parametrize(
    ("x", "y", "error", "match"),
    [
        ((_X, _X), None, TypeError, r"`x` must be one array \(N, \.\.\.\), got a tuple of arrays"),
        ([_X, _X], None, TypeError, r"`x` must be one array .*got a list of arrays"),
        ({"a": _X}, None, TypeError, r"`x` must be one array .*got a dict"),
        (_X, (np.arange(10), np.arange(10)), TypeError, r"`y` must be one array .*a tuple"),
        ((i for i in range(4)), None, TypeError, r"`x` must be an array-like .*got generator"),
        (np.array([{}, {}], dtype=object), None, TypeError, "object dtype"),
        ([[1, 2], [3]], None, ValueError, r"`x` is not a regular array"),
        (_X, np.float32(1.0), ValueError, r"`y` must have an examples axis, got a scalar"),
    ],
)
def test_x_and_y_must_each_be_one_array(x, y, error, match):
    """W5, U2: a pytree used to be stacked into one batch of two 'examples'."""
    with pytest.raises(error, match=match):
        batches(x, y, 4)


def test_lists_of_numbers_are_still_arrays():
    """Nested lists of numbers (and NumPy scalars) are array-likes, not pytrees."""
    out = list(batches([[1, 2], [3, 4]], [np.float32(0), np.float32(1)], 2, shuffle=False))
    assert out[0][0].tolist() == [[1, 2], [3, 4]] and out[0][1].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: num_batches(10, 4.0),
            r"num_batches: `batch_size` must be a positive int, got 4\.0",
        ),
        (lambda: num_batches(10.5, 4), r"`num_examples` must be a non-negative int, got 10\.5"),
        (lambda: num_batches(True, 4), r"`num_examples` must be a non-negative int, got True"),
        (lambda: num_batches("10", 4), r"`num_examples` must be a non-negative int, got '10'"),
        (
            lambda: permutation(-1),
            r"permutation: `num_examples` must be a non-negative int, got -1",
        ),
        (lambda: permutation(5.5), r"permutation: `num_examples` .* got 5\.5"),
        (
            lambda: permutation(5, seed=-1),
            r"permutation: `seed` must be a non-negative int, got -1",
        ),
        (lambda: permutation(5, epoch=-2), r"permutation: `epoch` must be a non-negative int"),
        (lambda: batches(_X, None, 4.0), r"batches: `batch_size` must be a positive int, got 4\.0"),
        (lambda: batches(_X, None, None), r"batches: `batch_size` .* got None"),
        (lambda: batches(_X, None, True), r"batches: `batch_size` .* got True"),
        (
            lambda: batches(_X, None, 2, seed=-1),
            r"batches: `seed` must be a non-negative int, got -1",
        ),
        (lambda: batches(_X, None, 2, seed=1.5), r"batches: `seed` .* got 1\.5"),
        (lambda: batches(_X, None, 2, seed=None), r"batches: `seed` .* got None"),
        (lambda: batches(_X, None, 2, epoch=-1), r"batches: `epoch` must be a non-negative int"),
    ],
)
def test_counts_and_seeds_are_checked_by_name(call, match):
    """W6, W7, U1, U3, U4: floats, bools, strings and negatives are named, at the call."""
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_ints_are_ints():
    n = num_batches(np.int64(10), np.int32(4))
    assert n == 3 and type(n) is int
    assert permutation(np.int64(4), seed=np.uint8(1), epoch=np.int16(0)).shape == (4,)
    assert len(list(batches(_X, None, np.int64(4), seed=np.int64(2)))) == 3


@pytest.mark.parametrize("shuffle", [False, True])
def test_changing_a_batch_never_changes_the_data(shuffle):
    """S35-W5: unshuffled batches were views of x and y, so normalising a batch in place
    (``xb /= 255``) rewrote the dataset for every later epoch."""
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6.0)
    before_x, before_y = x.copy(), y.copy()
    for xb, yb in batches(x, y, 4, shuffle=shuffle):
        xb *= -1
        yb += 100
        assert xb.flags.writeable and yb.flags.writeable
    np.testing.assert_array_equal(x, before_x)
    np.testing.assert_array_equal(y, before_y)
    for xb in batches(x, None, 4, shuffle=shuffle):
        xb[...] = 0
    np.testing.assert_array_equal(x, before_x)


def test_changes_to_the_data_show_up_in_later_batches():
    x = np.arange(6)
    it = batches(x, None, 2, shuffle=False)
    assert next(it).tolist() == [0, 1]
    x[2:] = -1
    assert next(it).tolist() == [-1, -1]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: batches(_X, None, 2, shuffle="no"), "`shuffle` must be a bool .*got 'no'"),
        (lambda: batches(_X, None, 2, shuffle=None), "`shuffle` must be a bool .*got None"),
        (
            lambda: batches(_X, None, 3, drop_remainder="False"),
            "batches: `drop_remainder` must be a bool .*got 'False'",
        ),
        (
            lambda: num_batches(10, 3, drop_remainder=1),
            "num_batches: `drop_remainder` must be a bool .*got 1",
        ),
    ],
)
def test_flags_must_be_bools(call, match):
    """S35-E2: shuffle="no" is truthy, so it shuffled; drop_remainder="False" dropped."""
    with pytest.raises(TypeError, match=match):
        call()


def test_numpy_bools_are_bools():
    out = list(batches(np.arange(5), None, 2, shuffle=np.False_, drop_remainder=np.True_))
    assert [b.tolist() for b in out] == [[0, 1], [2, 3]]
    assert num_batches(5, 2, drop_remainder=np.bool_(True)) == 2


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("epoch", [0, 3])
def test_shuffled_epoch_is_a_permutation_seen_once(seed, epoch):
    order = permutation(23, seed=seed, epoch=epoch)
    assert sorted(order.tolist()) == list(range(23))
    got = [b.tolist() for b in batches(np.arange(23), None, 5, seed=seed, epoch=epoch)]
    assert [len(b) for b in got] == [5, 5, 5, 5, 3]
    assert [i for b in got for i in b] == order.tolist()


@pytest.fixture(scope="module")
def epoch_order():
    """``nnjax.train.epoch_order``, imported here only (it loads JAX)."""
    from nnjax.train.data import epoch_order

    return epoch_order


_BELOW = [(0, 0), (5, 2), (123_456_789, 7), (0, 2**32 - 1), (2**32 - 1, 2**32 - 1)]
_ABOVE = [(2**32, 0), (5 + 7 * 2**32, 0), (2**32, 5), (0, 1 + 5 * 2**32), (2**64, 2**40)]


@pytest.mark.parametrize(("seed", "epoch"), _BELOW)
def test_orders_below_2_32_are_still_default_rng_of_the_pair(seed, epoch, epoch_order):
    """Recorded runs depend on these orders: they must not change."""
    want = np.random.default_rng([seed, epoch]).permutation(50)
    np.testing.assert_array_equal(permutation(50, seed=seed, epoch=epoch), want)
    np.testing.assert_array_equal(epoch_order(seed, epoch, 50), want)


@pytest.mark.parametrize(("seed", "epoch"), _BELOW + _ABOVE)
def test_permutation_and_epoch_order_agree(seed, epoch, epoch_order):
    order = permutation(50, seed=seed, epoch=epoch)
    np.testing.assert_array_equal(epoch_order(seed, epoch, 50), order)
    if seed < 2**64 and epoch < 2**63:  # NumPy ints too
        np.testing.assert_array_equal(epoch_order(np.uint64(seed), np.int64(epoch), 50), order)
    got = [b.tolist() for b in batches(np.arange(50), None, 7, seed=seed, epoch=epoch)]
    assert [i for b in got for i in b] == order.tolist()


@pytest.mark.parametrize(
    ("pair", "alias"),
    [((0, 1), (2**32, 0)), ((5, 7), (5 + 7 * 2**32, 0)), ((2**32, 5), (0, 1 + 5 * 2**32))],
)
def test_seeds_or_epochs_from_2_32_do_not_alias_other_pairs(pair, alias, epoch_order):
    """Audit: default_rng([seed, epoch]) splits ints into 32-bit words, so seed=2**32,
    epoch=0 seeded as [0, 1] and shuffled exactly as seed=0, epoch=1."""
    (s, e), (t, f) = pair, alias
    assert not np.array_equal(permutation(100, seed=s, epoch=e), permutation(100, seed=t, epoch=f))
    assert not np.array_equal(epoch_order(s, e, 100), epoch_order(t, f, 100))


@pytest.mark.parametrize(("seed", "epoch"), [(-1, 0), (0, -1), (-1, 2**40), (2**40, -1)])
def test_negative_seeds_and_epochs_are_still_refused(seed, epoch, epoch_order):
    with pytest.raises(ValueError, match=r"permutation: `(seed|epoch)` must be a non-negative"):
        permutation(5, seed=seed, epoch=epoch)
    with pytest.raises(ValueError, match="negative"):
        epoch_order(seed, epoch, 5)


def test_only_object_dtype_is_refused_as_documented():
    """Strings and datetimes are batched; only object dtype is refused (as documented)."""
    words = np.array(["a", "b", "c"])
    assert [b.tolist() for b in batches(words, None, 2, shuffle=False)] == [["a", "b"], ["c"]]
    days = np.array(["2024-01-01"] * 3, dtype="datetime64[D]")
    (xb, yb), _ = batches(np.arange(3.0), days, 2, shuffle=False)
    assert yb.dtype == days.dtype and xb.tolist() == [0.0, 1.0]
    for bad in ((i for i in range(3)), {1, 2}, [1, None]):
        with pytest.raises(TypeError, match=r"batches: `x` .*\(object dtype\)"):
            batches(bad, None, 2)
