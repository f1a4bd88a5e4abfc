"""The classic functions refuse bad keys, dtypes and sizes by name, before JAX sees them.

Every case here failed on the code before this file with JAX's own error (or none at
all): an int or ``None`` key, a batch of keys, an integer parameter dtype, a truth
table of ``2**n`` rows for any ``n``, empty batches whose mean cost is ``0 / 0``.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import ShapeError, classic
from nnjax.classic import logic_gates
from tests._lazy import made_once


@made_once
def _transitions() -> jax.Array:
    """A 2-state transition matrix (made in a test: at import it compiled a program)."""
    return jnp.array([[0.5, 0.5], [0.25, 0.75]])


#: name -> fn(key): every classic function that draws from a key.
KEYED = {
    "sigmoid_mlp_init": lambda k: classic.sigmoid_mlp_init(k, (2, 3)),
    "softmax_net_init": lambda k: classic.softmax_net_init(k, 2, 3, 4),
    "perceptron_init": lambda k: classic.perceptron_init(k, 2, 1, kernel_init="normal"),
    "esn_init": lambda k: classic.esn_init(k, 1, 10, density=0.5),
    "sample_path": lambda k: classic.sample_path(k, _transitions(), 0, 3),
    "train_xor": lambda k: classic.train_xor(k, steps=1, restarts=1),
    "perceptron_fit": lambda k: classic.perceptron_fit(
        {"kernel": jnp.zeros((1, 1)), "bias": jnp.zeros(1)},
        jnp.ones((2, 1)),
        jnp.ones((2, 1)),
        epochs=1,
        key=k,
    ),
    "hopfield_recall": lambda k: classic.hopfield_recall(jnp.zeros((3, 3)), jnp.ones(3), key=k),
    "mackey_glass": lambda k: classic.mackey_glass(4, washout=0, key=k),
}
REQUIRED_KEY = ["sigmoid_mlp_init", "softmax_net_init", "perceptron_init", "esn_init"]
REQUIRED_KEY += ["sample_path", "train_xor"]

#: name -> a maker of the bad key (the batches are made in the test, not at collection).
BAD_KEYS = {
    "int": lambda: 0,
    "typed batch": lambda: jax.random.split(jax.random.key(0), 2),
    "raw batch": lambda: jax.random.split(jax.random.PRNGKey(0), 2),
    "uint32 (3,)": lambda: np.zeros(3, np.uint32),
    "int32 pair": lambda: np.zeros(2, np.int32),
}


@pytest.mark.parametrize("bad", list(BAD_KEYS))
@pytest.mark.parametrize("op", list(KEYED))
def test_bad_key_is_named(op, bad):
    with pytest.raises(TypeError, match=rf"^{op}: `key` must be (a|one) PRNG key"):
        KEYED[op](BAD_KEYS[bad]())


@pytest.mark.parametrize("op", REQUIRED_KEY)
def test_none_key_is_named_where_a_key_is_required(op):
    with pytest.raises(TypeError, match=rf"^{op}: `key` must be a PRNG key.*got None"):
        KEYED[op](None)


@pytest.mark.parametrize("op", ["sigmoid_mlp_init", "softmax_net_init", "esn_init", "sample_path"])
def test_typed_and_raw_keys_give_the_same_result(op):
    typed, raw = KEYED[op](jax.random.key(3)), KEYED[op](jax.random.PRNGKey(3))
    for a, b in zip(jax.tree.leaves(typed), jax.tree.leaves(raw), strict=True):
        np.testing.assert_array_equal(a, b)


def test_batch_of_keys_message_says_what_to_do():
    keys = jax.random.split(jax.random.key(0), 3)
    match = re.escape("got a batch of keys of shape (3,); pick one, e.g. key[0], or jax.vmap")
    with pytest.raises(TypeError, match=match):
        classic.sigmoid_mlp_init(keys, (2, 1))


DTYPED = {
    "sigmoid_mlp_init": lambda d: classic.sigmoid_mlp_init(jax.random.key(0), (2, 3), dtype=d),
    "softmax_net_init": lambda d: classic.softmax_net_init(jax.random.key(0), 2, 3, 4, dtype=d),
    "perceptron_init": lambda d: classic.perceptron_init(jax.random.key(0), 2, 1, dtype=d),
    "esn_init": lambda d: classic.esn_init(jax.random.key(0), 1, 10, density=0.5, dtype=d),
}


@pytest.mark.parametrize(
    ("dtype", "shown"),
    [(jnp.int32, "int32"), (np.uint8, "uint8"), (bool, "bool"), (None, "None"), ("x", "'x'")],
)
@pytest.mark.parametrize("op", list(DTYPED))
def test_non_floating_parameter_dtype_is_refused(op, dtype, shown):
    match = rf"^{op}: `dtype` must be a floating dtype such as jnp.float32, got {shown}$"
    with pytest.raises(TypeError, match=match):
        DTYPED[op](dtype)


@pytest.mark.parametrize("op", list(DTYPED))
def test_bfloat16_parameters_are_fine(op):
    params = DTYPED[op]("bfloat16")
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}


def test_truth_table_has_a_documented_bound():
    assert logic_gates.MAX_TRUTH_TABLE_INPUTS == 20
    assert "MAX_TRUTH_TABLE_INPUTS" in classic.truth_table_inputs.__doc__
    match = r"truth_table_inputs: `n_inputs` must be at most 20 \(MAX_TRUTH_TABLE_INPUTS\), got 21"
    with pytest.raises(ValueError, match=match):
        classic.truth_table_inputs(21)
    with pytest.raises(ValueError, match="must be at most 20"):
        classic.truth_table_inputs(10**6)  # was a 2**1000000-row arange
    assert classic.truth_table_inputs(np.int64(3)).shape == (8, 3)


def test_sizes_take_numpy_ints_and_refuse_bools():
    params = classic.sigmoid_mlp_init(jax.random.key(0), (np.int64(2), np.int32(3)))
    assert params[0]["kernel"].shape == (2, 3)
    with pytest.raises(ValueError, match=r"sigmoid_mlp_init: `sizes` must be .*got \(True, 3\)"):
        classic.sigmoid_mlp_init(jax.random.key(0), (True, 3))


@pytest.mark.parametrize(
    ("args", "name", "value"),
    [((0, 3, 2), "in_features", 0), ((4, -1, 2), "hidden", -1), ((4, 3, 0), "classes", 0)],
)
def test_softmax_net_init_names_its_own_sizes(args, name, value):
    with pytest.raises(ValueError, match=rf"softmax_net_init: `{name}` must be a positive int, "):
        classic.softmax_net_init(jax.random.key(0), *args)


def test_empty_batches_are_refused_by_the_mean_costs():
    mlp = classic.sigmoid_mlp_init(jax.random.key(0), (2, 1))
    net = classic.softmax_net_init(jax.random.key(0), 2, 3, 4)
    x, y, labels = jnp.ones((0, 2)), jnp.ones((0, 1)), jnp.zeros((0,), jnp.int32)
    for op, call in [
        ("quadratic_cost", lambda: classic.quadratic_cost(mlp, x, y)),
        ("backprop", lambda: classic.backprop(mlp, x, y)),
        ("softmax_net_loss", lambda: classic.softmax_net_loss(net, x, labels)),
        ("softmax_net_grads", lambda: classic.softmax_net_grads(net, x, labels)),
    ]:
        with pytest.raises(ValueError, match=rf"^{op}: argument `x` has no rows"):
            call()
    with pytest.raises(ValueError, match=r"esn_fit_readout: argument `states` has no rows"):
        classic.esn_fit_readout(jnp.ones((0, 3)), jnp.ones((0, 1)))
    with pytest.raises(ValueError, match=r"nrmse: `targets` is empty \(shape \(0, 1\)\)"):
        classic.nrmse(jnp.ones((0, 1)), jnp.ones((0, 1)))  # was NaN


def test_sigmoid_mlp_needs_layers():
    with pytest.raises(ValueError, match=r"sigmoid_mlp: `params` has no layers"):
        classic.backprop([], jnp.ones((3, 2)), jnp.ones((3, 2)))


def test_softmax_net_logits_needs_a_batch_axis():
    net = classic.softmax_net_init(jax.random.key(0), 2, 3, 4)
    with pytest.raises(ShapeError, match=r"softmax_net_logits: argument `x` has shape \(2,\)"):
        classic.softmax_net_logits(net, jnp.ones(2))


def test_hopfield_sweep_checks_the_order():
    w, s = classic.hopfield_store(jnp.array([[1.0, -1.0, 1.0]])), jnp.ones(3)
    # Out of range: JAX clamped the read of w[:, 3] and dropped the write silently.
    with pytest.raises(ValueError, match=r"hopfield_sweep: `order\[1\]` = 3 is not a unit index"):
        classic.hopfield_sweep(w, s, jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"`order\[0\]` = -1 is not a unit index in \[0, 3\)"):
        classic.hopfield_sweep(w, s, jnp.array([-1]))
    with pytest.raises(TypeError, match=r"hopfield_sweep: argument `order` has dtype float32"):
        classic.hopfield_sweep(w, s, jnp.array([0.0, 1.0]))


@pytest.mark.parametrize(
    "call",
    [
        lambda: classic.transition_matrix(jnp.zeros((0, 0))),
        lambda: classic.stationary_distribution(jnp.zeros((0, 0))),
        lambda: classic.distribution_after(jnp.zeros((0, 0)), jnp.zeros(0), 2),
        lambda: classic.sample_path(jax.random.key(0), jnp.zeros((0, 0)), 0, 2),
    ],
)
def test_a_chain_needs_a_state(call):
    with pytest.raises(ValueError, match=r"`(weights|transitions)` has shape \(0, 0\): a chain"):
        call()


def test_neuron_needs_a_bias():
    with pytest.raises(ShapeError, match=r"neuron: argument `weights` has shape \(0,\)"):
        classic.neuron(jnp.zeros(0), jnp.ones(2))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_scale": -1.0}, ValueError, r"esn_init: `input_scale` must be > 0, got -1.0"),
        ({"input_scale": 0}, ValueError, r"esn_init: `input_scale` must be > 0"),
        ({"density": "0.5"}, TypeError, r"esn_init: `density` must be a real number, got '0.5'"),
        ({"spectral_radius": True}, TypeError, r"`spectral_radius` must be a real number"),
    ],
)
def test_esn_init_scalars(kwargs, error, match):
    with pytest.raises(error, match=match):
        classic.esn_init(jax.random.key(0), 1, 10, **kwargs)


def test_esn_init_takes_numpy_and_jax_scalars():
    a = classic.esn_init(jax.random.key(0), 1, 10, density=np.float32(0.5))
    b = classic.esn_init(jax.random.key(0), 1, 10, density=jnp.float32(0.5))
    np.testing.assert_array_equal(a["w"], b["w"])


def test_unknown_kind_names_the_op():
    with pytest.raises(ValueError, match=r"^truth_table_inputs: unknown kind 'relu'"):
        classic.truth_table_inputs(2, kind="relu")
    with pytest.raises(ValueError, match=r"^gate: unknown gate \['or'\]"):
        classic.gate(["or"], jnp.ones(2))
