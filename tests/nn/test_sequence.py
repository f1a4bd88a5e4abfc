import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
from nnjax.nn import GRU, LSTM, RNN, SequenceClassifier, SequenceRegressor

from ._helpers import assert_jit_traces_once, assert_same_model


@pytest.mark.slow  # among the slowest of the default run (fresh venv, 2026-12-01, session 3)
@pytest.mark.parametrize(("cell", "cls"), [("lstm", LSTM), ("GRU", GRU), ("rnn", RNN)])
def test_classifier_is_recurrent_stack_then_dense(cell, cls):
    model = SequenceClassifier(3, (5, 4), 2, cell=cell, rngs=nnx.Rngs(0))
    assert all(isinstance(layer, cls) for layer in model.recurrent)
    xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
    h = model.recurrent[1](model.recurrent[0](xs))
    np.testing.assert_allclose(model(xs), F.dense(model.head.params(), h), rtol=1e-6, atol=1e-6)
    assert h.shape == (2, 4)


def test_regressor_all_steps_and_univariate_input():
    model = SequenceRegressor(1, 4, all_steps=True, rngs=nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (2, 6))
    _, ys = F.lstm(model.recurrent[0].params(), xs[..., None])
    np.testing.assert_allclose(model(xs), F.dense(model.head.params(), ys), rtol=1e-5, atol=1e-5)


def test_dropout_train_eval_and_seed():
    a = SequenceClassifier(3, 4, 2, dropout=0.5, rngs=nnx.Rngs(1))
    b = SequenceClassifier(3, 4, 2, dropout=0.5, rngs=nnx.Rngs(1))
    assert_same_model(a, b)
    xs = jnp.ones((4, 3, 3))
    np.testing.assert_array_equal(a(xs), b(xs))
    a.eval()
    np.testing.assert_array_equal(a(xs), a(xs))
    a.train()
    assert not np.allclose(a(xs), a(xs))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"cell.*lstm, gru, rnn"):
        SequenceClassifier(3, 4, 2, cell="transformer", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"SequenceClassifier: `out_features` must be a positive"):
        SequenceClassifier(3, 16, 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"SequenceRegressor: `out_features` must be a positive"):
        SequenceRegressor(3, 16, -1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="hidden"):
        SequenceRegressor(3, (), rngs=nnx.Rngs(0))


def test_jit_does_not_retrace():
    assert_jit_traces_once(
        SequenceRegressor(2, 3, cell="gru", rngs=nnx.Rngs(0)), jnp.ones((2, 4, 2))
    )


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("all_steps", [False, True])
@pytest.mark.slow
def test_lengths_equal_running_each_sequence_alone(cell, all_steps):
    # the reference: each example cut to its length, run alone without `lengths`
    model = SequenceClassifier(3, (6, 5), 4, cell=cell, all_steps=all_steps, rngs=nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (3, 7, 3))
    lengths = jnp.array([7, 2, 4])
    out = model(xs, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model(xs[b : b + 1, :n])[0]
        got = out[b, :n] if all_steps else out[b]
        np.testing.assert_allclose(got, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.slow
def test_lengths_reach_the_model_through_fit_and_change_the_result(as_dict):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(32, 6, 2)).astype(np.float32)
    lengths = rng.integers(1, 7, 32).astype(np.int32)
    y = rng.normal(size=(32, 1)).astype(np.float32)
    inputs = {"xs": xs, "lengths": lengths} if as_dict else (xs, lengths)
    from nnjax import train

    def trained(data):
        model = SequenceRegressor(2, 4, rngs=nnx.Rngs(0))
        # integer lengths pass the input check: the model declares them (integer_inputs)
        train.fit(model, data, loss="mse", epochs=1, batch_size=8, verbose=0)
        return model

    with_lengths, without = trained((inputs, y)), trained((xs, y))
    np.testing.assert_allclose(
        train.predict(with_lengths, inputs),
        with_lengths(jnp.asarray(xs), jnp.asarray(lengths)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert train.evaluate(with_lengths, (inputs, y), loss="mse")["loss"] > 0
    assert not np.allclose(with_lengths.head.kernel.get_value(), without.head.kernel.get_value())
    with pytest.raises(TypeError, match=r"x\[0\] has dtype int32.*integer_inputs"):
        # the declaration covers `lengths` only: integer sequences are still refused
        train.fit(with_lengths, ((xs.astype(np.int32), lengths), y), loss="mse", verbose=0)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((2, 5), r"shape \(2, 5\), expected .*in_features=3; \(B, T\) is for 1"),
     ((2, 5, 4), r"shape \(2, 5, 4\), expected \(\*, \*, 3\)")],
)  # fmt: skip
def test_a_wrong_input_names_the_shape_passed(shape, match):
    from nnjax.errors import ShapeError

    with pytest.raises(ShapeError, match=r"SequenceClassifier: argument `xs` has " + match):
        SequenceClassifier(3, 8, 2, rngs=nnx.Rngs(0))(jnp.ones(shape))
