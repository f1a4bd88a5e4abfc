"""Tests for nnjax.train.state."""

import jax
import numpy as np

from nnjax.train.state import TrainState


def test_train_state_is_a_pytree():
    state = TrainState({"w": np.ones(2)}, (np.zeros(1),), {})
    assert len(jax.tree.leaves(state)) == 2
