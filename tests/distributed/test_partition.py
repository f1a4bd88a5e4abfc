"""partition.follow_specs: an optimizer moment follows the parameter it mirrors.

A root-level ``kernel`` and a nested ``sub/kernel`` of the same shape are both
suffixes of Adam's ``mu/sub/kernel``; the moment takes the spec of the longest one
(the parameter it mirrors), in the pure function and through ``state_layout``.
"""

import jax
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from nnjax.distributed import partition
from nnjax.train.sharding import state_layout
from nnjax.train.state import TrainState

ROOT, NESTED = P("model", None), P(None, "model")
RULES = [(r"^kernel$", ROOT), (r"^sub/kernel$", NESTED)]


def test_a_moment_follows_the_longest_matching_parameter_path():
    params = {"kernel": np.zeros((4, 4)), "sub": {"kernel": np.zeros((4, 4))}}
    specs = partition.rule_specs(params, RULES, {"data": 1, "model": 2})
    assert specs == {"kernel": ROOT, "sub": {"kernel": NESTED}}
    (adam, _) = partition.follow_specs(optax.adam(1e-3).init(params), params, specs)
    assert adam.mu == adam.nu == specs
    assert adam.count == P()


def test_a_shorter_suffix_still_counts_when_no_longer_one_has_the_shape():
    params = {"kernel": np.zeros((4, 4)), "sub": {"kernel": np.zeros((2, 4))}}
    specs = {"kernel": ROOT, "sub": {"kernel": NESTED}}
    opt = {"mu": {"sub": {"kernel": np.zeros((4, 4))}}, "nu": {"kernel": np.zeros((4, 4))}}
    follows = partition.follow_specs(opt, params, specs)
    assert follows == {"mu": {"sub": {"kernel": ROOT}}, "nu": {"kernel": ROOT}}


class _Nested(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (4, 4)))
        self.sub = nnx.Linear(4, 4, rngs=rngs)


@pytest.mark.devices(2)
def test_state_layout_gives_adam_moments_their_own_parameters_specs():
    params = nnx.to_pure_dict(nnx.state(_Nested(nnx.Rngs(0)), nnx.Param))
    state = TrainState(params, optax.adam(1e-3).init(params), {})
    mesh = Mesh(np.array(jax.devices()[:2]).reshape(1, 2), ("data", "model"))
    specs = state_layout(state, mesh, RULES).specs
    assert specs.params["kernel"] == ROOT and specs.params["sub"]["kernel"] == NESTED
    adam = specs.opt_state[0]
    for moment in (adam.mu, adam.nu):
        assert moment["kernel"] == ROOT
        assert moment["sub"]["kernel"] == NESTED
        assert moment["sub"]["bias"] == P()
