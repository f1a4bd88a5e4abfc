"""Array data holding int64 (uint64) values beyond 32 bits: refused, not wrapped.

Without ``jax_enable_x64`` JAX gives int64 arrays to the device as int32 and wraps what
does not fit: a token id or an mse target ``2**31 + 5`` became ``-2**31 + 5`` in
``fit``, ``evaluate`` and ``predict`` without a word (iterable batches were checked).
Each in-memory array is checked once, when its source is built; a memmap's rows as
they are read (it is never read whole).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.train import data, validation

ONE = jax.devices()[:1]
BIG = 2**31 + 5
IDS = np.array([1, BIG, 3, 4, 5, 6], np.int64)
WIDE = r"holds int64 values beyond int32's range \({}\.flat\[{}\] = {}; JAX computes in int32"


class Ids(nnx.Module):
    """Returns its integer input ``ids`` as a float, plus a trainable 0."""

    integer_inputs = ("ids",)

    def __init__(self):
        self.dense = nnx.Linear(1, 1, rngs=nnx.Rngs(0))

    def __call__(self, ids):
        return self.dense(jnp.zeros((ids.shape[0], 1))) * 0 + ids[:, None]


def _wide(name, part, at, value=BIG):
    return rf"^`{re.escape(name)}` " + WIDE.format(re.escape(part), at, value)


def _linear():
    return nnx.Linear(1, 1, rngs=nnx.Rngs(0))


def test_integer_inputs_beyond_int32_are_refused_by_fit_evaluate_and_predict():
    small = IDS.copy()
    small[1] = 2
    assert np.asarray(T.predict(Ids(), small)).ravel().tolist() == small.tolist()
    y = np.zeros((6, 1), np.float32)
    with pytest.raises(ValueError, match=_wide("data x", "x", 1)):
        T.fit(Ids(), (IDS, y), loss="mse", epochs=1, verbose=0, devices=ONE)
    with pytest.raises(ValueError, match=_wide("data x", "x", 1)):
        T.evaluate(Ids(), (IDS, y), loss="mse", devices=ONE)
    with pytest.raises(ValueError, match=_wide("x", "x", 1)):  # was [1, -2147483648, 3, ...]
        T.predict(Ids(), IDS, devices=ONE)
    with pytest.raises(ValueError, match=_wide("data x['ids']", "x['ids']", 1)):
        T.fit(Ids(), ({"ids": IDS}, y), loss="mse", epochs=1, verbose=0, devices=ONE)


def test_int64_targets_beyond_int32_are_refused():
    x = np.ones((6, 1), np.float32)
    y = IDS[:, None]
    with pytest.raises(ValueError, match=_wide("data y", "y", 1)):
        T.fit(_linear(), (x, y), loss="mse", epochs=1, verbose=0, devices=ONE)
    with pytest.raises(ValueError, match=_wide("data y", "y", 1)):
        T.fit(_linear(), (x, y, np.ones(6, np.int64)), loss="mse", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=_wide("validation y", "y", 1)):
        T.fit(_linear(), (x, np.zeros_like(x)), validation_data=(x, y), loss="mse", verbose=0)
    with pytest.raises(ValueError, match=_wide("data y", "y", 1)):
        T.evaluate(_linear(), (x, y), loss="mse", devices=ONE)
    negative = -IDS[::-1, None]  # -(2**31 + 5) at row 4
    with pytest.raises(ValueError, match=_wide("data y", "y", 4, -BIG)):
        T.evaluate(_linear(), (x, negative), loss="mse", devices=ONE)
    unsigned = np.array([[0], [1], [2**32], [3], [4], [5]], np.uint64)
    with pytest.raises(ValueError, match=r"`data y` holds uint64 values beyond uint32's range "
                       r"\(y.flat\[2\] = 4294967296;"):  # fmt: skip
        T.evaluate(_linear(), (x, unsigned), loss="mse", devices=ONE)


def test_a_memmaps_rows_are_checked_as_they_are_read(tmp_path):
    mm = np.memmap(tmp_path / "ids.dat", np.int64, "w+", shape=(12, 3))
    mm[:] = np.arange(36).reshape(12, 3)
    mm[9, 2] = BIG
    mm.flush()
    mm = np.memmap(tmp_path / "ids.dat", np.int64, "r", shape=(12, 3))
    src = data.ArraySource(mm, np.zeros(12, np.float32), batch_size=4, name="data")
    ones = np.ones(2, np.float32)
    assert src.batch(np.array([0, 1]), ones).x.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match=_wide("data x", "x", 29)):  # row 9, column 2
        src.batch(np.array([3, 9]), ones)
    with pytest.raises(ValueError, match=_wide("data x", "x", 29)):  # a slice of rows
        src.batch(np.array([8, 9]), ones)
    y = np.memmap(tmp_path / "y.dat", np.int64, "w+", shape=(12, 1))
    y[7] = BIG
    with pytest.raises(ValueError, match=_wide("data y", "y", 7)):
        T.fit(_linear(), (np.ones((12, 1), np.float32), y), loss="mse", epochs=1, verbose=0)


def test_in_memory_arrays_are_checked_once_not_per_batch(monkeypatch):
    calls = []
    check = validation.check_int64
    monkeypatch.setattr(
        validation, "check_int64", lambda name, a, *rows: calls.append(name) or check(name, a)
    )
    x = np.ones((40, 1), np.float32)
    y = np.arange(40, dtype=np.int64)[:, None]
    for epochs in (1, 3):
        calls.clear()
        T.fit(_linear(), (x, y), loss="mse", epochs=epochs, batch_size=4, verbose=0, devices=ONE)
        assert set(calls) == {"data x", "data y"} and len(calls) <= 4, calls


def test_nothing_is_narrowed_where_jax_computes_in_64_bits(x64):
    assert validation.check_int64("x", IDS) is None
    validation.check_wide_ints("data", x=IDS, y=IDS[:, None])
    got = np.asarray(T.predict(Ids(), IDS, devices=ONE)).ravel()
    assert got.dtype == np.float64 and got.tolist() == IDS.tolist()
    x, y = np.ones((6, 1)), IDS[:, None]
    assert np.isfinite(T.evaluate(_linear(), (x, y), loss="mse", devices=ONE)["loss"])
