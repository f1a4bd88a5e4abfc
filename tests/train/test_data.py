"""The data source and device feeder: every data kind, padding, weights, splits."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.errors import ShapeError
from nnjax.nn import MLP, WideAndDeep
from nnjax.train import sharding
from nnjax.train.data import ArraySource, epoch_index, make_source
from nnjax.train.feeder import DeviceFeeder, Prefetcher
from tests.train._data import blobs, leaves, mlp

ONE = jax.devices()[:1]
KW = dict(loss="cross_entropy", batch_size=16, verbose=0, devices=ONE, learning_rate=0.05)


def test_epoch_index_is_a_function_of_seed_and_epoch_and_covers_every_example():
    idx, mask = epoch_index(1, 3, 10, 3)
    np.testing.assert_array_equal(idx, epoch_index(1, 3, 10, 3)[0])
    assert idx.shape == mask.shape == (4, 3)
    np.testing.assert_array_equal(np.sort(idx.ravel()[mask.ravel() == 1]), np.arange(10))
    assert not np.array_equal(idx, epoch_index(1, 4, 10, 3)[0])
    assert not np.array_equal(idx, epoch_index(2, 3, 10, 3)[0])
    np.testing.assert_array_equal(mask[-1], [1, 0, 0])


@pytest.mark.parametrize("gather", [True, False])
def test_feeder_sees_every_example_once_per_epoch(gather):
    x, y = blobs(n=37)
    src = ArraySource(x, y, batch_size=4)
    feeder = DeviceFeeder(src, sharding.make_mesh(ONE), k=3, on_device=gather)
    chunks = list(feeder.epoch(seed=0, epoch=0))
    assert [c.steps for c in chunks] == [3, 3, 3, 1]  # 10 batches, the last one padded
    assert sum(c.examples for c in chunks) == 37
    assert feeder.gather is gather


def test_prefetcher_reraises_and_stops():
    def bad(i):
        if i == 2:
            raise KeyError("boom")
        return i

    with pytest.raises(KeyError, match="boom"):
        list(Prefetcher(range(5), bad))


def _batches(x, y, size):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_every_data_kind_ends_bitwise_equal_to_the_array_path(tmp_path):
    x, y = blobs(n=100)  # 7 batches of 16, the last one of 4 padded
    kw = dict(KW, epochs=2, shuffle=False)
    runs = {}
    for kind in ("arrays", "list", "generator", "memmap"):
        model = mlp()
        if kind == "arrays":
            data = (x, y)
        elif kind == "list":
            data = _batches(x, y, 16)
        elif kind == "generator":
            data = itertools.cycle(_batches(x, y, 16))
            kw_kind = dict(steps_per_epoch=7)
        else:
            path = tmp_path / "x.npy"
            np.save(path, x)
            data = (np.load(path, mmap_mode="r"), y)
        extra = kw_kind if kind == "generator" else {}
        T.fit(model, data, **kw, **extra)
        runs[kind] = leaves(model)
    for kind in ("list", "generator", "memmap"):
        for a, b in zip(runs["arrays"], runs[kind]):
            np.testing.assert_array_equal(a, b, err_msg=kind)


@pytest.mark.slow  # measured among the slowest; runs in CI's slow step
def test_dict_inputs_train_wide_and_deep_through_fit():
    rng = np.random.default_rng(0)
    x = {"x_wide": rng.normal(size=(64, 3)).astype("f4"), "x_deep": rng.normal(size=(64, 5))}
    y = (x["x_wide"][:, :1] + x["x_deep"][:, :1]).astype("f4")
    model = WideAndDeep(3, (8, 8), 1, deep_features=5, rngs=nnx.Rngs(0))
    history = T.fit(model, (x, y), loss="mse", epochs=4, learning_rate=1e-2, verbose=0, devices=ONE)
    assert set(history.history) == {"loss", "learning_rate"}  # regression: no accuracy
    assert history["loss"][-1] < history["loss"][0]
    pred = T.predict(model, x, devices=ONE)
    np.testing.assert_allclose(pred, model(x["x_wide"], x["x_deep"]), rtol=1e-5, atol=1e-6)
    logs = T.evaluate(model, (x, y), loss="mse", metrics="mae", devices=ONE)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(pred - y)), rtol=1e-5, atol=1e-6)
    # a tuple is passed positionally
    T.fit(model, ((x["x_wide"], x["x_deep"]), y), loss="mse", verbose=0, devices=ONE)


def test_sample_and_class_weights():
    x, y = blobs(n=48)
    kw = dict(KW, optimizer="sgd", epochs=1)
    base, ones = mlp(), mlp()
    T.fit(base, (x, y), **kw)
    T.fit(ones, (x, y, np.ones(48)), **kw)
    for a, b in zip(leaves(base), leaves(ones)):
        np.testing.assert_array_equal(a, b)
    zero = mlp()
    T.fit(zero, (x, y, np.zeros(48)), **kw)  # no example counts: SGD leaves the weights
    for a, b in zip(leaves(mlp()), leaves(zero)):
        np.testing.assert_array_equal(a, b)
    by_class, by_sample = mlp(), mlp()
    weights = {0: 0.5, 1: 2.0, 2: 1.0}
    T.fit(by_class, (x, y), class_weight=weights, **kw)
    T.fit(by_sample, (x, y, np.array([weights[c] for c in y])), **kw)
    for a, b in zip(leaves(by_class), leaves(by_sample)):
        np.testing.assert_array_equal(a, b)


def test_validation_split_holds_out_the_last_fraction():
    x, y = blobs(n=50)
    model = mlp()
    history = T.fit(model, (x, y), validation_split=0.2, epochs=1, **KW)
    logs = T.evaluate(model, (x[40:], y[40:]), loss="cross_entropy", devices=ONE)
    np.testing.assert_allclose(history["val_loss"][-1], logs["loss"], rtol=1e-5, atol=1e-6)


def test_endless_generator_with_steps_per_epoch():
    x, y = blobs(n=32)

    def endless():
        while True:
            yield x[:16], y[:16]

    history = T.fit(mlp(), endless(), steps_per_epoch=3, epochs=2, **KW)
    assert len(history) == 2
    with pytest.raises(
        ValueError, match=r"`data` ended after 2 batches in epoch 1.*steps_per_epoch=3"
    ):
        T.fit(mlp(), _batches(x, y, 16), steps_per_epoch=3, epochs=1, **KW)
    model = mlp()
    before = leaves(model)
    traces = T.compiled.TRACES.count
    with pytest.raises(ValueError, match=r"`data` is an iterator.*reads it 2 times"):
        T.fit(model, iter(_batches(x, y, 16)), epochs=2, **KW)
    with pytest.raises(ValueError, match=r"`validation_data` is an iterator.*reads it 3 times.*"
                       r"re-iterable \(a list, a DataLoader\) or arrays"):  # fmt: skip
        T.fit(model, (x, y), validation_data=iter(_batches(x, y, 16)), epochs=3, **KW)
    assert T.compiled.TRACES.count == traces  # refused before anything trains
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)


def test_a_one_shot_generator_is_refused_by_a_sweep_before_training():
    x, y = blobs(n=32)
    traces = T.compiled.TRACES.count
    members = T.grid(learning_rate=[0.1, 0.01])
    for data, kw in [(iter(_batches(x, y, 16)), {}), ((x, y), {"validation_data": iter([(x, y)])})]:
        with pytest.raises(ValueError, match=r"is an iterator.*reads it 2 times"):
            T.sweep(
                lambda rngs: MLP(4, (8,), 3, rngs=rngs), data, loss="cross_entropy",
                members=members, epochs=2, verbose=0, **kw,
            )  # fmt: skip
    assert T.compiled.TRACES.count == traces


def test_an_endless_generators_bad_batch_is_named_with_its_epoch():
    x, y = blobs(n=32)

    def endless():  # batch 1 of the third epoch (the 8th read) has 5 features
        for i in itertools.count():
            yield (np.ones((16, 5), np.float32) if i == 7 else x[:16]), y[:16]

    with pytest.raises(ShapeError, match=r"^batch 1 of epoch 3: x has shape \(16, 5\) float32, "
                       r"but the first batch had \(16, 4\)"):  # fmt: skip
        T.fit(mlp(), endless(), steps_per_epoch=3, epochs=4, **KW)


def test_make_source_kinds():
    x, y = blobs(n=10)
    assert isinstance(make_source("train", (x, y), batch_size=4), ArraySource)
    with pytest.raises(ValueError, match="pair"):
        make_source("train", x, batch_size=4)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones((16, 5), np.float32), r"batch 7: x has shape \(16, 5\) float32, but the first "
         r"batch had \(16, 4\) float32"),
        (np.ones((16, 4), np.float64).astype(np.int32), r"batch 7: x has shape \(16, 4\) int32"),
    ],
)  # fmt: skip
def test_a_bad_batch_is_named_and_the_model_keeps_its_weights(bad, message):
    x, y = blobs(n=16)

    def batches():
        for i in range(10):
            yield (bad if i == 7 else x), y

    model = mlp()
    before = leaves(model)
    with pytest.raises((ValueError, TypeError), match=message):
        T.fit(model, batches(), **{**KW, "check_inputs": False})
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)


def test_an_empty_batch_is_named_before_anything_runs_on_it():
    x, y = blobs(n=16)
    batches = [(x, y)] * 3 + [(x[:0], y[:0])]
    with pytest.raises(ValueError, match="batch 3 has no examples"):
        T.fit(mlp(), batches, **KW)
    with pytest.raises(ValueError, match="batch 3 has no examples"):
        T.predict(mlp(), batches)


def test_a_bare_metric_name_is_one_metric():
    history = T.fit(mlp(), blobs(n=32), metrics="accuracy", **KW)
    assert "accuracy" in history.history


def test_each_process_reads_only_its_block_of_every_batch(monkeypatch):
    x, y = blobs(n=10)
    src = ArraySource(x, y, batch_size=4)
    whole = list(src.batches(0, 0, shuffle=False))
    second_half = list(src.batches(0, 0, shuffle=False, part=slice(2, 4)))
    assert [b.mask.tolist() for b in second_half] == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    for full, half in zip(whole, second_half):
        np.testing.assert_array_equal(half.x, full.x[2:4])
        np.testing.assert_array_equal(half.weight, full.weight[2:4])
    # an iterable yields this process's block; its batch size counts every process
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    src = make_source("train", [(x[:3], y[:3])], batch_size=99)
    assert (src.local_batch_size, src.batch_size) == (3, 6)


@pytest.mark.devices(4)
def test_the_feeder_places_this_processs_rows():
    x, y = blobs(n=10)
    mesh = sharding.make_mesh(jax.devices())
    src = ArraySource(x, y, batch_size=8)
    feeder = DeviceFeeder(src, mesh, k=2, on_device=False)
    assert feeder.part == slice(0, 8)  # one process: all of them
    chunks = list(feeder.epoch(0, 0, shuffle=False))
    batch = chunks[0].args[0]
    assert batch.x.shape == (2, 8, 4) and len(batch.x.addressable_shards) == 4


def test_is_arrays_names_the_data_and_says_to_pass_a_tuple():
    from nnjax.train.data import is_arrays

    x, y = blobs(n=8)
    assert is_arrays((x, y)) and not is_arrays([(x, y)])
    with pytest.raises(ValueError, match=r"`validation` must be a pair .*one array of shape"):
        is_arrays(x, "validation")
    with pytest.raises(ValueError, match=r"`data` is a list of 2 arrays.*tuple \(x, y\)"):
        is_arrays([x, y])
    with pytest.raises(ValueError, match=r"`data` must be a pair.*a dict with keys \['x', 'y'\]"):
        is_arrays({"x": x, "y": y})


def test_make_source_checks_class_weight_and_steps():
    x, y = blobs(n=8)
    with pytest.raises(ValueError, match=r"class_weight\[1\] = -2.0"):
        make_source("train", [(x, y)], batch_size=4, class_weight={1: -2.0})
    with pytest.raises(ValueError, match=r"`steps`=3 limits the batches .* `data` is arrays"):
        make_source("data", (x, y), batch_size=4, steps_per_epoch=3, steps_name="steps")
    assert make_source("data", [(x, y)], batch_size=4, steps_per_epoch=3).steps == 3


def test_check_inputs_false_lets_a_model_take_nan_inputs():
    class Imputer(nnx.Module):  # a model that handles missing values itself
        def __init__(self, rngs):
            self.mlp = MLP(4, (8,), 3, rngs=rngs)

        def __call__(self, x):
            return self.mlp(jnp.nan_to_num(x))

    x, y = blobs(n=32)
    x = x.copy()
    x[5, 1] = np.nan
    history = T.fit(Imputer(nnx.Rngs(0)), (x, y), check_inputs=False, epochs=1, **KW)
    assert np.isfinite(history["loss"]).all()  # before: refused, as with check_inputs=True


def test_no_labels_for_a_loss_fn_that_reads_none():
    x = blobs(n=32)[0]

    def reconstruction(model, batch):  # an autoencoder's objective: y is None
        assert batch.y is None
        err = jnp.mean((model(batch.x) - batch.x) ** 2, axis=1)
        return jnp.sum(err * batch.weight) / jnp.sum(batch.mask)

    kw = dict(loss_fn=reconstruction, epochs=2, verbose=0, devices=ONE)
    for data in ((x, None), [(x[:16], None), (x[16:], None)]):
        history = T.fit(MLP(4, (2,), 4, rngs=nnx.Rngs(0)), data, **kw)
        assert np.isfinite(history["loss"]).all()  # before: "`train y` holds no arrays"
    with pytest.raises(ValueError, match=r"`data` has no labels \(y is None\), but the loss"):
        T.fit(mlp(), (x, None), **KW)
