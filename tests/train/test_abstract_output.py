"""``abstract_output.output_shape``: the model traced once per graph and shapes."""

import jax
import numpy as np
import pytest
from flax import nnx

from nnjax.errors import ShapeError
from nnjax.nn import MLP
from nnjax.train import abstract_output, evaluate, fit, predict
from nnjax.train.step import split_model


class CountingMLP(MLP):
    """An MLP that counts how often it is called (traced, under ``jit`` or ``eval_shape``)."""

    calls = 0  # on the class: the steps call copies of the model

    def __call__(self, x):
        type(self).calls += 1
        return super().__call__(x)


def _calls(model) -> int:
    return type(model).calls


def test_output_shape_is_the_models_output_for_one_example():
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    graphdef, params, rest = split_model(model, training=False)
    out = abstract_output.output_shape(model, graphdef, params, rest, np.ones((5, 3), np.float32))
    assert (out.shape, out.dtype) == ((1, 2), jax.numpy.float32)


def test_predict_and_evaluate_trace_the_model_once_per_shape():
    model = CountingMLP(3, (4,), 2, rngs=nnx.Rngs(0))
    x, y = np.ones((6, 3), np.float32), np.zeros(6, np.int32)
    predict(model, x)
    first = _calls(model)
    for _ in range(3):
        predict(model, x)
    assert _calls(model) == first  # no new trace: the shape check and the program kept
    evaluate(model, (x, y), loss="cross_entropy")
    after_evaluate = _calls(model)
    evaluate(model, (x, y), loss="cross_entropy")
    assert _calls(model) == after_evaluate
    predict(model, np.zeros((6, 3), np.float32))  # other values, same shapes
    assert _calls(model) == after_evaluate
    predict(model, np.zeros((7, 3), np.float32))  # another batch: one new program, whose
    assert _calls(model) == after_evaluate + 2  # loop's outputs are shaped by a trace first


def test_a_wrong_input_raises_every_time():
    model = MLP(4, (4,), 2, rngs=nnx.Rngs(0))
    for _ in range(2):
        with pytest.raises(ValueError, match=r"per-example shape \(5,\).*expects 4 input"):
            predict(model, np.ones((3, 5), np.float32))


class WithConfig(nnx.Module):
    """A module whose graph holds an unhashable static attribute (a dict)."""

    def __init__(self):
        self.w = nnx.Param(jax.numpy.ones((3, 2)))
        self.config = nnx.static({"sizes": [3, 2]})

    def __call__(self, x):
        return x @ self.w[...]


def test_a_graph_that_cannot_be_hashed_is_traced_every_time():
    model = WithConfig()
    graphdef, params, rest = split_model(model, training=False)
    with pytest.raises(TypeError):
        hash(graphdef)
    for _ in range(2):
        out = abstract_output.output_shape(model, graphdef, params, rest, np.ones((5, 3)))
        assert out.shape == (1, 2)
    assert predict(model, np.ones((5, 3), np.float32)).shape == (5, 2)


def test_an_input_the_model_cannot_take_is_a_shape_error_naming_the_data():
    from nnjax import ShapeError

    model = MLP(4, (4,), 2, rngs=nnx.Rngs(0))
    graphdef, params, rest = split_model(model, training=False)
    x = np.ones((3, 5), np.float32)
    words = r"^the model cannot take inputs of per-example shape \(5,\) float32 \(the model "
    with pytest.raises(ShapeError, match=words + r"expects 4 input features\): ") as err:
        abstract_output.output_shape(model, graphdef, params, rest, x)
    assert isinstance(err.value, ValueError) and err.value.__cause__ is not None
    with pytest.raises(ShapeError, match=r"^`validation`: the model cannot take inputs"):
        abstract_output.output_shape(model, graphdef, params, rest, x, name="validation")


class NeedsTrain(nnx.Module):
    """A ``__call__`` that nnjax cannot call with one array: a required keyword."""

    def __init__(self):
        self.mlp = MLP(3, (4,), 2, rngs=nnx.Rngs(0))

    def __call__(self, x, *, train):
        return self.mlp(x)


def test_a_call_that_cannot_take_the_inputs_is_a_type_error_not_a_shape_error():
    from nnjax import ShapeError
    from nnjax.train import fit

    x, y = np.ones((4, 3), np.float32), np.zeros(4, np.int32)
    words = r"^`data`: the model's __call__ cannot take the inputs as nnjax passes them \("
    with pytest.raises(TypeError, match=words + r"missing a required argument: 'train'\)") as err:
        fit(NeedsTrain(), (x, y), loss="cross_entropy", epochs=1, verbose=0)
    assert not isinstance(err.value, ShapeError)
    with pytest.raises(TypeError, match=r"^`x`: the model's __call__ cannot take the inputs"):
        predict(NeedsTrain(), x)


def _cnn():
    from nnjax.nn import CNN

    return CNN((8, 8, 1), 3, conv_features=(2,), dense=(4,), rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    ("make", "x"),
    [
        (_cnn, np.ones((8, 8, 1), np.float32)),
        (lambda: MLP(64, (4,), 3, rngs=nnx.Rngs(0)), np.ones(64, np.float32)),
        (lambda: MLP(300, (4,), 3, rngs=nnx.Rngs(0)), np.ones(300, np.float32)),  # > batch
    ],
    ids=["cnn-image", "mlp-vector", "longer-than-a-batch"],
)
def test_one_example_without_a_batch_axis_says_x_none(make, x):
    words = (
        rf"if x \(shape \({x.shape[0]},.*\)\) is one example without a batch axis, pass x\[None\]"
    )
    with pytest.raises(ShapeError, match=words) as caught:
        predict(make(), x)
    assert "expected" in str(caught.value)  # the model's own error stays
    if x.ndim == 3:  # fit and evaluate, with one label
        with pytest.raises(ShapeError, match=words):
            evaluate(make(), (x, np.zeros(8, np.int32)), loss="cross_entropy")
        with pytest.raises(ShapeError, match=words):
            fit(make(), (x, np.zeros(8, np.int32)), loss="cross_entropy", verbose=0)


def test_channels_first_images_are_told_to_transpose():
    x = np.ones((6, 1, 8, 8), np.float32)
    hint = r"channels-last \(NHWC\): x.transpose\(0, 2, 3, 1\)"
    with pytest.raises(ShapeError, match=hint):
        predict(_cnn(), x)
    with pytest.raises(ShapeError, match=hint):
        fit(_cnn(), (x, np.zeros(6, np.int32)), loss="cross_entropy", verbose=0)
    with pytest.raises(ShapeError) as caught:  # a plain wrong shape: no such hint
        predict(_cnn(), np.ones((6, 5, 5, 1), np.float32))
    assert "transpose" not in str(caught.value) and "x[None]" not in str(caught.value)
