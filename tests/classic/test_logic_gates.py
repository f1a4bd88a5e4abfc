"""Tests for nnjax.classic.logic_gates: truth tables and the trained XOR network."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import classic
from nnjax.classic import logic_gates

TRUTH = {  # inputs in binary counting order 00, 01, 10, 11
    "or": [0, 1, 1, 1],
    "and": [0, 0, 0, 1],
    "nand": [1, 1, 1, 0],
    "xor": [0, 1, 1, 0],
}


@pytest.mark.parametrize("name", ["or", "and", "nand"])
def test_sigmoid_gates_truth_tables(name):
    out = classic.gate(name, classic.truth_table_inputs(2))
    np.testing.assert_array_equal(np.round(out), TRUTH[name])
    assert float(jnp.max(jnp.abs(out - jnp.array(TRUTH[name], jnp.float32)))) < 1e-4


def test_sigmoid_weights_are_the_course_values():
    assert classic.SIGMOID_GATES == {
        "or": (-10.0, 20.0, 20.0),
        "and": (-30.0, 20.0, 20.0),
        "not": (10.0, -20.0),
        "nand": (30.0, -20.0, -20.0),
    }


def test_not_gates():
    np.testing.assert_array_equal(
        np.round(classic.gate("not", jnp.array([[0.0], [1.0]]))), [1.0, 0.0]
    )
    np.testing.assert_array_equal(
        classic.gate("not", jnp.array([[-1.0], [1.0]]), kind="sign"), [1.0, -1.0]
    )


@pytest.mark.parametrize("name", ["or", "and", "nand"])
def test_sign_gates_truth_tables(name):
    x = classic.truth_table_inputs(2, kind="sign")
    expected = 2 * np.array(TRUTH[name], np.float32) - 1
    np.testing.assert_array_equal(classic.gate(name, x, kind="sign"), expected)
    # The course's formulas, written out.
    if name == "or":
        np.testing.assert_array_equal(expected, np.sign(x[:, 0] + x[:, 1] + 1.5))
    if name == "and":
        np.testing.assert_array_equal(expected, np.sign(x[:, 0] + x[:, 1] - 1.5))


@pytest.mark.parametrize("kind", ["sigmoid", "sign"])
def test_two_layer_xor(kind):
    x = classic.truth_table_inputs(2, kind=kind)
    out = np.asarray(classic.xor_gate(x, kind=kind))
    expected = np.array(TRUTH["xor"], np.float32)
    if kind == "sign":
        expected = 2 * expected - 1
    np.testing.assert_array_equal(np.round(out), expected)


def test_truth_table_inputs_order():
    np.testing.assert_array_equal(classic.truth_table_inputs(3)[5], [1.0, 0.0, 1.0])
    assert classic.truth_table_inputs(3, kind="sign").shape == (8, 3)


def test_trained_network_learns_xor(key):
    params, costs = classic.train_xor(key, steps=800)
    out = classic.sigmoid_mlp(params, classic.truth_table_inputs(2))[:, 0]
    np.testing.assert_array_equal(np.round(out), TRUTH["xor"])
    assert float(costs[-1]) < 0.01 < float(costs[0])
    assert [p["kernel"].shape for p in params] == [(2, 2), (2, 1)]


def test_train_xor_does_not_retrace(key):
    classic.train_xor(key, steps=10, restarts=2, learning_rate=0.1)
    before = logic_gates._train_xor._cache_size()
    classic.train_xor(jax.random.key(1), steps=10, restarts=2, learning_rate=0.2)
    assert logic_gates._train_xor._cache_size() == before


def test_errors():
    with pytest.raises(ValueError, match="unknown gate 'xnor'"):
        classic.gate("xnor", jnp.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown kind 'relu'"):
        classic.gate("or", jnp.zeros((1, 2)), kind="relu")
    with pytest.raises(AssertionError, match=r"neuron: argument `x` has shape \(4, 3\)"):
        classic.gate("or", jnp.zeros((4, 3)))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda k: classic.truth_table_inputs(-1), "truth_table_inputs: `n_inputs` must be a pos"),
        (lambda k: classic.truth_table_inputs(0), "truth_table_inputs: `n_inputs`"),
        (lambda k: classic.truth_table_inputs(2.0), r"truth_table_inputs: `n_inputs`.*got 2\.0"),
        (lambda k: classic.train_xor(k, restarts=0), "train_xor: `restarts` must be a positive"),
        (lambda k: classic.train_xor(k, hidden=0), "train_xor: `hidden` must be a positive int"),
        (lambda k: classic.train_xor(k, steps=-1), "train_xor: `steps` must be a non-negative"),
    ],
)
def test_bad_counts_are_named(key, call, match):
    with pytest.raises(ValueError, match=match):
        call(key)


def test_train_xor_with_zero_steps_returns_the_best_start(key):
    params, costs = classic.train_xor(key, steps=0, restarts=2)
    assert costs.shape == (0,)
    assert params[0]["kernel"].shape == (2, 2)
