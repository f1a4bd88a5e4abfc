"""``IterableSource``: every batch checked as it is read, its labels once the model is known."""

import jax
import numpy as np
import pytest

from nnjax.errors import ShapeError
from nnjax.train.iterable_source import IterableSource

THREE = jax.ShapeDtypeStruct((1, 3), np.float32)  # a 3-class model's output


def _batches(*labels):
    return [(np.ones((len(y), 2), np.float32), np.asarray(y, np.int32)) for y in labels]


def test_later_batches_labels_are_checked_once_the_model_is_known():
    src = IterableSource(_batches([0, 1], [2, 5]))
    assert len(list(src.batches(0, 0))) == 2  # before: nothing knows the class count
    src.check_labels(THREE, "cross_entropy", "train")
    batches = src.batches(0, 0)
    next(batches)
    with pytest.raises(ValueError, match=r"`train batch 1` y\[1\] = 5 is out of range: the model "
                       r"has 3 outputs.*\(1 bad label\)"):  # fmt: skip
        next(batches)


def test_the_first_batch_is_checked_at_once():
    src = IterableSource(_batches([0, -1], [0, 1]))
    with pytest.raises(ValueError, match=r"`data batch 0` y\[1\] = -1 is out of range"):
        src.check_labels(THREE, "cross_entropy", "data")


def test_padding_rows_are_not_counted():
    src = IterableSource(_batches([0, 1, 2, 1], [7]))  # batch 1 padded to 4 copies of its row
    src.check_labels(THREE, "cross_entropy", "train")
    with pytest.raises(ValueError, match=r"y\[0\] = 7 .*\(1 bad label\)"):
        list(src.batches(0, 0))


def test_regression_targets_are_not_class_labels():
    src = IterableSource(_batches([0, 1], [9, 40]))
    src.check_labels(jax.ShapeDtypeStruct((1, 1), np.float32), "mse", "train")
    assert len(list(src.batches(0, 0))) == 2


def test_class_weight_classes_must_be_the_models():
    src = IterableSource(_batches([0, 1], [2, 1]), class_weight={0: 1.0, 7: 5.0})
    with pytest.raises(ValueError, match=r"class_weight names class \[7\], but the model has 3"):
        src.check_labels(THREE, "cross_entropy", "train")


def test_a_batch_of_another_shape_is_a_shape_error():
    data = [*_batches([0, 1]), (np.ones((2, 3), np.float32), np.zeros(2, np.int32))]
    with pytest.raises(
        ShapeError, match=r"batch 1: x has shape \(2, 3\) float32, but the first batch"
    ):
        list(IterableSource(data).batches(0, 0))
    data = [*_batches([0, 1]), (np.ones((2, 2), np.float64), np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match=r"batch 1: y has shape \(2,\) float32, but ") as err:
        list(IterableSource(data).batches(0, 0))
    assert not isinstance(err.value, ShapeError)  # a dtype, not a shape
    with pytest.raises(ShapeError, match="batch 1 has 3 examples, more than the first batch's 2"):
        list(IterableSource([*_batches([0, 1], [0, 1, 2])]).batches(0, 0))


def test_fit_stops_at_a_later_bad_batch_and_keeps_the_weights():
    import nnjax.train as T
    from tests.train._data import blobs, leaves, mlp

    x, y = blobs(n=16)
    model = mlp()
    before = leaves(model)

    def batches():
        yield x[:8], y[:8]
        yield x[8:], np.full(8, 7, np.int32)

    with pytest.raises(ValueError, match=r"`data batch 1` y\[0\] = 7 is out of range"):
        T.fit(model, batches(), loss="cross_entropy", steps_per_dispatch=1, verbose=0)
    for a, b in zip(before, leaves(model)):
        np.testing.assert_array_equal(a, b)


def _refilled(x, y, batch):
    """A generator that hands over the same two buffers, refilled for every batch."""
    bx, by = np.empty((batch, *x.shape[1:]), x.dtype), np.empty(batch, y.dtype)
    for i in range(0, len(x), batch):
        n = min(batch, len(x) - i)
        bx[:n], by[:n] = x[i : i + n], y[i : i + n]
        yield bx[:n], by[:n]


def test_a_generator_that_refills_one_buffer_trains_as_fresh_batches():
    import optax

    import nnjax.train as T
    from tests.train._data import blobs, leaves, mlp

    x, y = blobs(n=100)  # 12 full batches of 8 and one of 4
    fresh = [(x[i : i + 8].copy(), y[i : i + 8].copy()) for i in range(0, 100, 8)]
    models = mlp(seed=3), mlp(seed=3)
    for model, data in zip(models, (fresh, _refilled(x, y, 8)), strict=True):
        T.fit(model, data, loss="cross_entropy", optimizer=optax.adam(1e-2), verbose=0)
    for a, b in zip(leaves(models[0]), leaves(models[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    model = mlp(seed=3)
    logs = T.evaluate(model, _refilled(x, y, 8), loss="cross_entropy")
    expected = T.evaluate(model, (x, y), loss="cross_entropy", batch_size=8)
    np.testing.assert_allclose(logs["loss"], expected["loss"], rtol=1e-6, atol=1e-7)


def test_stacked_blocks_copy_each_batch_and_pad_the_last_block():
    from nnjax.train.data import Batch
    from nnjax.train.feeder import stacked_blocks

    buf = np.zeros((2, 3), np.float32)

    def refill():
        for v in (1.0, 2.0, 3.0):
            buf[:] = v
            yield Batch(buf, np.full(2, v), np.full(2, v), np.ones(2, np.float32))

    blocks = list(stacked_blocks(refill(), 2))
    assert [n for _, n in blocks] == [2, 1]
    assert blocks[0][0].x[:, 0, 0].tolist() == [1.0, 2.0]
    last = blocks[1][0]
    assert last.x[:, 0, 0].tolist() == [3.0, 3.0]  # padded with its last batch
    assert last.weight.tolist() == [[3.0, 3.0], [0.0, 0.0]]
    assert last.mask.tolist() == [[1.0, 1.0], [0.0, 0.0]]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_named_by_example(bad):
    x = np.ones((4, 3), np.float32)
    x[2, 1] = bad
    src = IterableSource([(np.ones((4, 3), np.float32), np.zeros(4, np.int32)),
                          (x, np.zeros(4, np.int32))])  # fmt: skip
    with pytest.raises(ValueError, match=r"batch 1: the inputs x hold NaN or inf \(example 2, 1 "):
        list(src.batches(0, 0))


def test_a_resumed_run_warns_that_a_stream_read_across_epochs_restarts(tmp_path):
    """With ``steps_per_epoch`` one iterator streams across the epochs; a resumed run's
    new iterable starts from its first batch (a silent difference from the uninterrupted
    run before the warning). Read whole each epoch, a list resumes exactly: no warning."""
    import warnings

    from nnjax.train import ModelCheckpoint, fit
    from tests.train._data import blobs, mlp

    x, y = blobs(64)
    data = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]
    kw = dict(loss="cross_entropy", verbose=0)
    said = {}
    for steps in (2, None):
        folder = tmp_path / f"steps{steps}"
        fit(mlp(), data, epochs=2, steps_per_epoch=steps, callbacks=[ModelCheckpoint(folder)],
            **kw)  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(mlp(), data, epochs=3, steps_per_epoch=steps, resume_from=folder,
                callbacks=[ModelCheckpoint(folder)], **kw)  # fmt: skip
        said[steps] = [str(w.message) for w in caught if "starts again" in str(w.message)]
        if steps:  # the same run again: it had ended, it trains nothing, and says nothing
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit(mlp(), data, epochs=3, steps_per_epoch=steps, resume_from=folder, **kw)
            assert not [w for w in caught if "starts again" in str(w.message)]
    assert said[None] == []
    (message,) = said[2]
    assert message.startswith("fit resumes at epoch 3, but `data` (an iterable read 2 batches ")
    assert "where the interrupted run had read 4:" in message


def test_int64_and_int32_batches_are_one_dtype_as_jax_sees_them():
    x = np.ones((2, 2), np.float32)
    data = [(x, np.array([0, 1], np.int32)), (x.astype(np.float64), np.array([2, 1], np.int64))]
    got = list(IterableSource(data).batches(0, 0))
    assert [b.y.dtype for b in got] == [np.int32, np.int32]  # on the device: int32
    assert got[1].x.dtype == np.float32 and got[1].y.tolist() == [2, 1]
    first_int64 = list(IterableSource(data[::-1]).batches(0, 0))
    assert [b.y.dtype for b in first_int64] == [np.int32, np.int32]
    ids = {"ids": np.array([[3], [4]], np.uint64)}  # integer inputs (a model's token ids)
    later = {"ids": np.ones((2, 1), np.uint32)}
    src = IterableSource([(ids, data[0][1]), (later, data[0][1])], check_inputs=False)
    assert [b.x["ids"].dtype for b in src.batches(0, 0)] == [np.uint32, np.uint32]
    with pytest.raises(ValueError, match=r"batch 1: y has shape \(2,\) bool, but the first "
                       r"batch had \(2,\) int32"):  # fmt: skip
        list(IterableSource([data[0], (x, np.array([True, False]))]).batches(0, 0))


def test_int64_values_beyond_int32_are_refused_not_wrapped():
    x, big = np.ones((2, 2), np.float32), np.array([0, 2**31], np.int64)
    src = IterableSource([(x, np.array([0, 1], np.int32)), (x, big)])
    with pytest.raises(ValueError, match=r"^`batch 1 y` holds int64 values beyond int32's range "
                       r"\(y.flat\[1\] = 2147483648; JAX computes in int32"):  # fmt: skip
        list(src.batches(0, 0))
    with pytest.raises(ValueError, match=r"`batch 0 x\['a'\]` holds int64 values beyond"):
        IterableSource([({"a": big[:, None]}, np.zeros(2, np.int32))], check_inputs=False)


def test_int64_and_int32_batches_differ_where_jax_computes_in_64_bits(x64):
    x = np.ones((2, 2), np.float32)
    data = [(x, np.array([0, 1], np.int32)), (x, np.array([2, 1], np.int64))]
    with pytest.raises(ValueError, match=r"batch 1: y has shape \(2,\) int64, but the first "
                       r"batch had \(2,\) int32"):  # fmt: skip
        list(IterableSource(data).batches(0, 0))
    big = np.array([0, 2**40], np.int64)
    assert next(iter(IterableSource([(x, big)]).batches(0, 0))).y.dtype == np.int64


def test_a_batchs_sample_weight_may_be_a_column():
    x = np.ones((2, 2), np.float32)
    src = IterableSource([(x, np.array([0, 1]), np.array([[2.0], [3.0]]))] * 2)
    assert [b.weight.tolist() for b in src.batches(0, 0)] == [[2.0, 3.0], [2.0, 3.0]]
    with pytest.raises(ShapeError, match=r"batch 0: sample_weight has shape \(2, 2\)"):
        IterableSource([(x, np.array([0, 1]), np.ones((2, 2)))])
