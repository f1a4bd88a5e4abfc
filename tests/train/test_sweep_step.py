"""``nnjax.train.sweep_step``: the members' optimizer states, built in one compiled call."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train.step import split_model
from nnjax.train.sweep_step import init_opt_states, stack, take

M = 3


def _params():
    return stack([split_model(MLP(3, (5, 4), 2, rngs=nnx.Rngs(s)))[1] for s in range(M)])


def _eager(factory, params, values):
    """Reference: each member's own ``inject_hyperparams`` optimizer, initialised eagerly."""
    states = []
    for j in range(M):
        tx = optax.inject_hyperparams(factory)(**{n: v[j] for n, v in values.items()})
        states.append(tx.init(take(params, j)))
    return stack(states)


def _scaled_adam(learning_rate, power):
    return optax.chain(optax.scale_by_adam(), optax.scale(-learning_rate * power))


def _no_hyperparameters():
    return optax.sgd(0.1, momentum=0.9)


@pytest.mark.parametrize(
    "factory, values",
    [
        (optax.adam, {"learning_rate": [1e-3, 1e-2, 0.1]}),
        (optax.sgd, {"learning_rate": [0.1, 0.2, 0.3], "momentum": [0.0, 0.5, 0.9]}),
        (optax.adamw, {"learning_rate": [1e-3] * M, "weight_decay": [0.0, 1e-4, 1e-2]}),
        (_scaled_adam, {"learning_rate": [0.1, 0.2, 0.3], "power": [1, 2, 3]}),
        (_no_hyperparameters, {}),
    ],
    ids=["adam", "sgd-momentum", "adamw", "int-hyperparameter", "none"],
)
def test_equals_each_members_eager_init(factory, values):
    params = _params()
    got, want = init_opt_states(factory, params, values), _eager(factory, params, values)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_traced_once_for_new_values():
    calls = []

    def factory(learning_rate):
        calls.append(1)
        return optax.adam(learning_rate)

    params = _params()
    for lrs in ([0.1, 0.2, 0.3], [1e-3, 1e-4, 1e-5], [0.5] * M):
        state = init_opt_states(factory, params, {"learning_rate": lrs})
        np.testing.assert_allclose(state.hyperparams["learning_rate"], lrs, rtol=1e-6, atol=1e-9)
    assert len(calls) == 1  # eagerly: one call per member and set of values (9)


def test_an_init_that_reads_its_values_runs_eagerly():
    def factory(learning_rate):
        if learning_rate > 0.15:  # a Python branch on the value: cannot be traced
            return optax.sgd(learning_rate, momentum=0.9)
        return optax.sgd(learning_rate)

    params, values = _params(), {"learning_rate": [0.2, 0.3, 0.4]}
    got, want = init_opt_states(factory, params, values), _eager(factory, params, values)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert jnp.asarray(got.hyperparams["learning_rate"]).shape == (M,)
