"""``fit`` and ``sweep`` over datasets of many sizes reuse their compiled programs.

Device-resident data are padded to a size bucket (:mod:`nnjax.train.size_buckets`), so
every training (and validation) size of a bucket runs one compiled program, and the
results are bitwise those of the unpadded data (the bucket rule made the identity).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import nn
from nnjax.train import compiled, feeder, sharding, size_buckets
from nnjax.train.data import ArraySource
from tests.train._data import leaves, mlp, three_classes

ONE = jax.devices()[:1]
B = 16
SIZES = (330, 341, 352, 367, 384)  # one bucket, 384 rows; 384 itself its boundary
VAL_SIZES = (100, 101, 104, 107, 112)  # one bucket, 112 rows
X, Y = three_classes(1500, seed=3)
W = np.random.default_rng(4).uniform(0.1, 2.0, 1500).astype(np.float32)
XV, YV = X[1000:], Y[1000:]


def _fit(n, *, weights=False, model=None, **kw):
    model = model or mlp(seed=1)
    data = (X[:n], Y[:n], W[:n]) if weights else (X[:n], Y[:n])
    kw = {"loss": "cross_entropy", "batch_size": B, "verbose": 0, "devices": ONE, **kw}
    history = T.fit(model, data, **kw)
    return leaves(model), history.history


def _unbucketed(monkeypatch):
    """Rows kept at the dataset's size: the program shapes of an nnjax without buckets."""
    monkeypatch.setattr(size_buckets, "bucket", lambda n: n)


def test_the_sizes_share_one_bucket_and_pad_under_a_quarter():
    assert {size_buckets.bucket(n) for n in SIZES} == {384}
    assert {size_buckets.bucket(n) for n in VAL_SIZES} == {112}
    for n in range(1, 5000):
        assert 0 <= size_buckets.bucket(n) - n < n / 4
    assert len({size_buckets.bucket(n) for n in range(1025, 2049)}) == 4  # 4 per doubling


def test_fits_over_sizes_of_one_bucket_compile_the_train_step_once():
    _fit(SIZES[0])  # compiles (unless an earlier test did)
    traces = compiled.TRACES.count
    for n in SIZES[1:]:
        _fit(n)
    assert compiled.TRACES.count == traces


def test_validation_over_sizes_of_one_bucket_compiles_its_program_once():
    _fit(SIZES[0], validation_data=(XV[: VAL_SIZES[0]], YV[: VAL_SIZES[0]]))
    traces = compiled.TRACES.count
    for n in VAL_SIZES[1:]:
        _fit(SIZES[0], validation_data=(XV[:n], YV[:n]))
    assert compiled.TRACES.count == traces


@pytest.mark.slow  # among the slowest of the default run (2026-12-07, session 45)
def test_sweeps_over_sizes_of_one_bucket_compile_once():
    def model_fn(rngs, width):
        return nn.MLP(4, (width,), 3, rngs=rngs)

    def sweep(n, nv):
        members = T.grid(seeds=[0, 1], learning_rate=[1e-3, 1e-2], width=[8])
        return T.sweep(
            model_fn, (X[:n], Y[:n]), loss="cross_entropy", optimizer=optax.adam,
            members=members, epochs=1, batch_size=B, validation_data=(XV[:nv], YV[:nv]),
            verbose=0, devices=ONE,
        )  # fmt: skip

    sweep(SIZES[0], VAL_SIZES[0])
    traces = compiled.TRACES.count
    for n, nv in zip(SIZES[1:], VAL_SIZES[1:], strict=True):
        sweep(n, nv)
    assert compiled.TRACES.count == traces


# Two of the eight combinations in the default run (4-6 s each); CI's slow step runs all.
_COMBINATIONS = [
    pytest.param(True, False, 1, id="shuffled-1-device"),
    pytest.param(False, True, 4, marks=pytest.mark.devices(4), id="weighted-4-devices"),
    *(
        pytest.param(
            shuffle, weights, devices, marks=[pytest.mark.slow, pytest.mark.devices(devices)]
        )
        for shuffle in (True, False)
        for weights in (False, True)
        for devices in (1, 4)
        if (shuffle, weights, devices) not in ((True, False, 1), (False, True, 4))
    ),
]


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.parametrize(("shuffle", "weights", "devices"), _COMBINATIONS)
def test_padded_rows_train_bitwise_as_the_unpadded_data(monkeypatch, shuffle, weights, devices):
    kw = dict(
        epochs=2, shuffle=shuffle, weights=weights, seed=5, devices=jax.devices()[:devices],
        validation_data=(XV[:107], YV[:107]),
    )  # fmt: skip
    for n in (341, 367):  # padded to 384 rows, index blocks of 3 dispatches
        got, history = _fit(n, model=mlp(seed=1, dropout=0.1), **kw)  # dropout: RNG too
        with monkeypatch.context() as patch:
            _unbucketed(patch)
            want, want_history = _fit(n, model=mlp(seed=1, dropout=0.1), **kw)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
        assert history == want_history


def test_a_padded_fit_is_the_plain_optax_loop_over_the_same_batches():
    n, rate = 341, 0.1  # batches of 16 rows, the 22nd of 5
    model = mlp(seed=1)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, x, y, w):
        logits = nnx.merge(graphdef, params, rest)(x)
        rows = optax.softmax_cross_entropy_with_integer_labels(logits, y)
        return jnp.sum(rows * w) / x.shape[0]

    grad = jax.jit(jax.grad(loss))
    for _epoch in range(2):
        for i in range(0, n, B):
            rows = slice(i, min(i + B, n))
            grads = grad(params, X[rows], Y[rows], W[rows])
            params = jax.tree.map(lambda p, g: p - rate * g, params, grads)
    got, _ = _fit(n, model=model, epochs=2, shuffle=False, weights=True, optimizer="sgd",
                  learning_rate=rate)  # fmt: skip
    for a, b in zip(got, jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=0, atol=1e-6)


def test_sweep_members_train_bitwise_as_on_the_unpadded_data(monkeypatch):
    def run():
        members = T.grid(seeds=[0, 1], learning_rate=[1e-3, 1e-2], width=[8])
        result = T.sweep(
            lambda rngs, width: nn.MLP(4, (width,), 3, rngs=rngs), (X[:341], Y[:341], W[:341]),
            loss="cross_entropy", optimizer=optax.adam, members=members, epochs=2,
            batch_size=B, validation_data=(XV[:107], YV[:107]), verbose=0, devices=ONE,
        )  # fmt: skip
        return [leaves(result.member(i)) for i in range(4)], result.rows()

    got, got_rows = run()
    _unbucketed(monkeypatch)
    want, want_rows = run()
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)
    assert got_rows == want_rows


def test_the_device_copy_is_padded_to_the_bucket_unless_that_would_not_fit(monkeypatch):
    mesh = sharding.make_mesh(ONE)
    source = ArraySource(X[:341], Y[:341], batch_size=B, weight=W[:341])
    (x, y, weight), rows = feeder.put_rows(source, mesh)
    assert rows == 384 and x.shape == (384, 4) and y.shape == weight.shape == (384,)
    np.testing.assert_array_equal(np.asarray(x[:341]), X[:341])
    assert not np.asarray(weight[341:]).any()
    monkeypatch.setattr(feeder, "fits_on_device", lambda nbytes, device: nbytes <= source.nbytes())
    assert feeder.put_rows(source, mesh)[1] == 341  # the exact copy fits, the padded one not


def test_each_epoch_uploads_its_index_blocks_once_in_the_shape_of_the_bucket():
    mesh = sharding.make_mesh(ONE)
    for n in SIZES:
        fed = feeder.DeviceFeeder(ArraySource(X[:n], Y[:n], batch_size=B), mesh, k=2)
        chunks = list(fed.epoch(0, 0))
        assert len(chunks) == -(-n // (2 * B))  # only the real dispatches: 11 or 12
        idx, mask, j, _ = chunks[0].args[1:]
        assert idx.shape == mask.shape == (12, 2, B) and j == 0
        assert all(c.args[1] is idx for c in chunks)  # one upload, then numbers per dispatch
        assert sum(c.examples for c in chunks) == n
