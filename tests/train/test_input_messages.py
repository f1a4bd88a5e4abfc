"""Messages for per-token labels with class_weight, multi-input batch tuples, key paths."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.errors import ShapeError
from nnjax.train.iterable_source import IterableSource, path_name
from nnjax.train.validation import leaf_paths


class TwoInputs(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(5, 3, rngs=rngs)

    def __call__(self, a, b):
        return self.linear(jnp.concatenate([a, b], axis=-1))


class NeedsFlag(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(2, 3, rngs=rngs)

    def __call__(self, a, *, flag):
        return self.linear(a)


def _inputs(n=8):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n, 2)).astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)
    return a, b, rng.integers(0, 3, n).astype(np.int32)


def test_per_token_labels_for_a_model_of_one_label_per_example_name_the_shapes():
    x = np.ones((4, 2), np.float32)
    y = np.arange(32, dtype=np.int32).reshape(4, 8) % 3
    words = r"the loss cannot compare model outputs of shape \(4, 3\) float32 with labels \(4, 8\)"
    with pytest.raises(ValueError, match=words) as err:
        T.fit(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), (x, y), loss="cross_entropy",
              class_weight={0: 0.0, 1: 1.0}, verbose=0)  # fmt: skip
    assert "continuous" not in str(err.value)


def test_predict_says_how_a_batch_tuple_is_read():
    a, b, _ = _inputs()
    words = (
        r"missing a required argument: 'b'\).*; predict reads a batch tuple as "
        r"\(x, y\[, sample_weight\]\) and passes x alone to the model: pass several inputs "
        r"as one x, \(\(a, b\),\) or a dict \{'a': a, 'b': b\}$"
    )
    with pytest.raises(TypeError, match=words):
        T.predict(TwoInputs(nnx.Rngs(0)), [(a, b)])
    assert T.predict(TwoInputs(nnx.Rngs(0)), [((a, b),)]).shape == (8, 3)


def test_fit_says_how_a_batch_tuple_is_read():
    a, _, y = _inputs()
    words = r"; fit reads a batch tuple .* as one x, \(\(a, b\), y\) or \(\{'a': a, 'b': b\}, y\)$"
    with pytest.raises(TypeError, match=words):
        T.fit(TwoInputs(nnx.Rngs(0)), [(a, y)], loss="cross_entropy", verbose=0)


@pytest.mark.parametrize("model, x", [
    (TwoInputs, lambda a, b: [a]),  # batches of bare arrays: no tuple was read
    (TwoInputs, lambda a, b: a),  # arrays, not an iterable
    (NeedsFlag, lambda a, b: [(a, b)]),  # a keyword-only argument: not the tuple's fault
])  # fmt: skip
def test_no_batch_tuple_hint_where_it_does_not_apply(model, x):
    a, b, _ = _inputs()
    with pytest.raises(TypeError, match=r"missing a required argument") as err:
        T.predict(model(nnx.Rngs(0)), x(a, b))
    assert "batch tuple" not in str(err.value)


@pytest.mark.parametrize("tree, names", [
    ({"x": 1}, ["x"]),
    ({"x": (1, 2)}, ["x[0]", "x[1]"]),
    ({"x": {"ids": 1}, "y": 2}, ["x['ids']", "y"]),
    ({"x": ({"a": 1},)}, ["x[0]['a']"]),
    ({"x": [[1]]}, ["x[0][0]"]),
])  # fmt: skip
def test_path_name_reads_as_written(tree, names):
    assert [path_name(p) for p, _ in leaf_paths(tree)] == names
    assert path_name("[0]") == "[0]"  # not rooted at a named part: as it is


def test_a_batch_of_another_length_names_its_input():
    a, _, y = _inputs()
    seq = lambda t: np.zeros((8, t), np.float32)
    batches = [((seq(4), a), y), ((seq(6), a), y)]
    words = r"batch 1: x\[0\] has shape \(8, 6\) float32, but the first batch had \(8, 4\) float32"
    with pytest.raises(ShapeError, match=words):
        list(IterableSource(batches).batches(0, 0))
    batches = [({"ids": seq(4)}, y), ({"ids": seq(6)}, y)]
    with pytest.raises(ShapeError, match=r"batch 1: x\['ids'\] has shape"):
        list(IterableSource(batches).batches(0, 0))
