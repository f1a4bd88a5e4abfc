"""The dispatch over the state's flat arrays: ``flat_dispatch.on_leaves`` and ``driver.Run``."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.train as T
from nnjax.train import compiled, driver
from nnjax.train.driver import Run
from nnjax.train.flat_dispatch import on_leaves
from tests.train._data import blobs, mlp


class Pair(NamedTuple):
    params: Any
    count: Any


def step(params, count, x):
    return jax.tree.map(lambda p: p * x, params), count + 1, {"x": x}


def test_on_leaves_rebuilds_the_state_for_the_step_and_returns_its_arrays():
    state = Pair({"w": jnp.ones(2), "b": jnp.zeros(())}, jnp.int32(0))
    leaves, treedef = jax.tree.flatten(state)
    new, out = jax.jit(on_leaves(step), static_argnums=0)(treedef, leaves, 3.0)
    want_state, want_out = step(*state, 3.0)[:2], step(*state, 3.0)[2]
    for got, want in zip(new, jax.tree.leaves(want_state), strict=True):
        np.testing.assert_array_equal(got, want)
    assert jax.tree.unflatten(treedef, new).params["w"].tolist() == [3.0, 3.0]
    assert int(new[-1]) == 1 and float(out["x"]) == float(want_out["x"])


def test_on_leaves_names_a_step_that_changes_the_states_structure():
    def grows(params, count, x):
        return {**params, "extra": x}, count, {}

    leaves, treedef = jax.tree.flatten(Pair({"w": jnp.ones(2)}, 0))
    with pytest.raises(TypeError, match="returned a state of structure"):
        on_leaves(grows)(treedef, leaves, 1.0)


def test_run_rebuilds_its_state_once_after_a_dispatch_and_checks_the_count():
    run = Run(model=None, state=Pair({"w": 1}, 0), mesh=None, history=None, seed=0)
    assert run.leaves == [1, 0] and run.treedef == jax.tree.structure(Pair({"w": 1}, 0))
    run.set_leaves([5, 2])
    assert run.state == Pair({"w": 5}, 2) and run.state is run.state
    run.state = Pair({"w": 7}, 3)
    assert run.leaves == [7, 3]
    with pytest.raises(ValueError, match="has 2 arrays, got 3"):
        run.set_leaves([1, 2, 3])


def test_fit_builds_the_structured_state_per_epoch_not_per_dispatch(monkeypatch):
    reads = []
    getter = Run.state.fget

    def counting(self):
        reads.append(1)
        return getter(self)

    monkeypatch.setattr(driver.Run, "state", property(counting, Run.state.fset))
    x, y = blobs(n=96)
    T.fit(mlp(), (x, y), loss="cross_entropy", batch_size=8, epochs=3, verbose=0,
          steps_per_dispatch=1, devices=jax.devices()[:1])  # fmt: skip
    assert compiled.steps_per_dispatch_for(mlp()) == 8  # so 1 above is 12 dispatches an epoch
    assert len(reads) <= 3 + 2, len(reads)  # the epochs' logs and the end; not 36
