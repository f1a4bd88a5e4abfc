"""Restoring checkpoints straight onto a sharded layout, in this one process (4 devices).

The multi-process paths (each process writing and reading only its shards) are in
``test_two_process_checkpoint.py`` and ``tests/io/test_io_multiprocess.py``; here the same
restore targets run in one process: a checkpoint saved from host arrays restores onto the FSDP
layout of ``fit(param_sharding="fsdp")``, equal to the host restore, and placing it
as ``fit`` does keeps that layout.
"""

import jax
import numpy as np
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import optimizers, resume, sharding, step
from nnjax.train.checkpoint import save_checkpoint
from nnjax.train.state import TrainState


def _state(seed):
    _, params, rest = step.split_model(MLP(6, (16,), 3, rngs=nnx.Rngs(seed)))
    tx = optimizers.accumulate(optimizers.get_optimizer("adam"), 1)
    return TrainState(params, optimizers.init_state(tx, params, learning_rate=0.01), rest)


@pytest.mark.devices(4)
def test_a_checkpoint_restores_onto_the_fsdp_layout(tmp_path):
    saved = _state(0)
    save_checkpoint(tmp_path, 0, saved, {"seed": 0, "global_step": 0})
    fresh = _state(1)
    layout = sharding.state_layout(fresh, sharding.make_mesh(jax.devices()), "fsdp")
    host, _ = resume.restore_state(tmp_path, fresh)
    placed, _ = resume.restore_state(tmp_path, fresh, shardings=layout.shardings())
    want = jax.tree.leaves((layout.shardings().params, layout.shardings().opt_state))
    got = jax.tree.leaves((placed["params"], placed["opt_state"]))
    assert [a.sharding for a in got] == want
    kernel = placed["params"]["layers"][0]["kernel"][...]
    assert [s.data.shape for s in kernel.addressable_shards] == [(6, 4)] * 4
    for a, b, c in zip(
        got,
        jax.tree.leaves((host["params"], host["opt_state"])),
        jax.tree.leaves((saved.params, saved.opt_state)),
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    state = sharding.put_state(TrainState(**placed), layout)
    assert jax.tree.leaves(state.params)[1].sharding == kernel.sharding
