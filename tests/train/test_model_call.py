"""nnjax.train.model_call: how a batch's ``x`` reaches the model (array, tuple, dict)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.train as T
from nnjax.train.model_call import call_model, integer_input_paths


class DictInput(nnx.Module):
    """One input, a dict: ``batch["a"]`` and ``batch["b"]`` side by side."""

    def __init__(self, rngs):
        self.linear = nnx.Linear(5, 3, rngs=rngs)

    def __call__(self, batch, training=False):
        return self.linear(jnp.concatenate([batch["a"], batch["b"]], axis=-1))


class TwoInputs(nnx.Module):
    """The same model with two positional inputs."""

    def __init__(self, rngs):
        self.linear = nnx.Linear(5, 3, rngs=rngs)

    def __call__(self, a, b):
        return self.linear(jnp.concatenate([a, b], axis=-1))


class Keywords(nnx.Module):
    def __call__(self, **inputs):
        return sum(inputs.values())


def _data(n=40):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n, 2)).astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)
    return a, b, rng.integers(0, 3, n).astype(np.int32)


@pytest.mark.slow
def test_a_dict_in_a_tuple_reaches_a_one_input_model_whole():
    a, b, y = _data()
    kw = dict(loss="cross_entropy", epochs=2, batch_size=16, verbose=0, seed=0)
    whole, split = DictInput(nnx.Rngs(0)), TwoInputs(nnx.Rngs(0))
    T.fit(whole, (({"a": a, "b": b},), y), **kw)
    T.fit(split, ((a, b), y), **kw)  # the same model, inputs as a tuple: the reference
    for p, q in zip(
        jax.tree.leaves(nnx.state(whole)), jax.tree.leaves(nnx.state(split)), strict=True
    ):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        T.predict(whole, ({"a": a, "b": b},)), T.predict(split, (a, b)), rtol=1e-6, atol=1e-6
    )
    assert T.evaluate(whole, (({"a": a, "b": b},), y), loss="cross_entropy")["loss"] > 0


def test_a_dict_is_keywords_when_its_keys_name_inputs():
    model = TwoInputs(nnx.Rngs(0))
    a, b, _ = _data(4)
    np.testing.assert_array_equal(call_model(model, {"b": b, "a": a}), model(a, b))
    assert float(call_model(Keywords(), {"p": jnp.ones(()), "q": jnp.ones(())})) == 2.0


@pytest.mark.parametrize(
    "x",
    [{"a": np.ones((2, 2)), "c": np.ones((2, 3))}, {"c": np.ones((2, 2)), "d": np.ones((2, 3))}],
)
def test_a_dict_that_fits_neither_rule_is_refused(x):
    # partly the inputs' names, or none of them: the message says how to pass it whole
    with pytest.raises(ValueError, match=r"inputs \['a', 'b'\].*put it in a tuple: `\(x,\)`"):
        call_model(TwoInputs(nnx.Rngs(0)), x)


def test_a_dict_for_a_one_input_model_names_the_tuple_form():
    _, _, y = _data(8)
    x = {"a": np.ones((8, 2), np.float32), "b": np.ones((8, 3), np.float32)}
    with pytest.raises(ValueError, match=r"put it in a tuple"):
        T.fit(DictInput(nnx.Rngs(0)), (x, y), loss="cross_entropy", verbose=0)


class _Tokens(nnx.Module):
    integer_inputs = ("ids", "lengths")

    def __call__(self, ids, features, lengths=None, *, scale=1.0):
        return features * scale


def test_integer_input_paths_name_every_way_x_can_pass_a_declared_input():
    assert integer_input_paths(_Tokens()) == {"['ids']", "['lengths']", "[0]", "[2]", ""}
    assert integer_input_paths(nnx.Linear(2, 3, rngs=nnx.Rngs(0))) == frozenset()


@pytest.mark.parametrize("declared", ["ids", ("idz",), ("scale", 3)])
def test_a_bad_integer_inputs_declaration_is_named(declared):
    model = _Tokens()
    model.integer_inputs = declared  # an instance's own value shadows the class's
    with pytest.raises(TypeError, match=r"_Tokens.integer_inputs must be a tuple of names"):
        integer_input_paths(model)


def test_an_iterable_of_batches_takes_declared_integer_inputs():
    class Scaled(nnx.Module):
        integer_inputs = ("n",)

        def __init__(self):
            self.dense = nnx.Linear(2, 1, rngs=nnx.Rngs(0))

        def __call__(self, x, n):
            return self.dense(x) * n[:, None]

    rng = np.random.default_rng(0)
    batches = [
        ((rng.normal(size=(4, 2)).astype(np.float32), np.arange(4, dtype=np.int32)),
         np.zeros((4, 1), np.float32))
        for _ in range(3)
    ]  # fmt: skip
    model = Scaled()
    T.fit(model, batches, loss="mse", epochs=1, verbose=0)
    x, n = batches[0][0]
    np.testing.assert_allclose(T.predict(model, batches)[:4], model(x, n), rtol=1e-6, atol=1e-6)
