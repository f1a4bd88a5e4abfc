"""Checkpoints of a 2-process fit with param_sharding="fsdp": collective, and portable.

This process (1 process, 4 devices) trains one epoch and checkpoints it (``_group.py``,
before the launch); in the ``ckpt`` scenario of the 2-process group (``_ckpt_worker.py``,
2 processes x 2 CPU devices) the processes restore that checkpoint straight onto the
FSDP layout (each process reading its shards), resume it to epoch 2 with
``ModelCheckpoint`` (each process writing its shards, nothing gathered), then resume a
fresh run from their own checkpoint to epoch 3. The result equals an uninterrupted
one-process run, and the checkpoint the two processes wrote restores here.
"""

import os

import jax
import numpy as np
import pytest

import nnjax
from nnjax import train
from nnjax.train import optimizers, resume, sharding, step
from nnjax.train.checkpoint import load_checkpoint
from nnjax.train.state import TrainState

from ._group import W, assert_leaves_close, group, leaves_of, params, results

pytestmark = pytest.mark.slow  # the 2-process group (shared by every slow distributed test)
USES_TWO_PROCESS_GROUP = True  # conftest.py starts the group early, in the background


@pytest.fixture(scope="module")
def ckpt_group(tmp_path_factory):
    out = group(tmp_path_factory) / "ckpt"
    with np.load(out / "first.npz") as f:
        first = [f[f"arr_{i}"] for i in range(len(f.files))]
    return out, first, results(out.parent, "ckpt")


def test_a_one_process_checkpoint_restores_onto_fsdp_shards_of_two_processes(ckpt_group):
    _, first, both = ckpt_group
    for r in both:
        assert bool(r["sharded_restore"]) and bool(r["restore_layout"])
        np.testing.assert_array_equal(r["restored_kernel"], first[1])  # layers/0/kernel


def test_collective_checkpoints_gather_nothing(ckpt_group):
    out, _, both = ckpt_group
    for r in both:
        assert int(r["gathers"]) == 0
    for item in ("state", "opt_state"):
        files = os.listdir(out / "ckpt" / "3" / item)
        assert "ocdbt.process_0" in files and "ocdbt.process_1" in files


def test_fsdp_resume_over_two_processes_equals_an_uninterrupted_run(ckpt_group):
    _, _, both = ckpt_group
    (x, y), _ = W.dataset()
    whole = W.make_model()
    train.fit(whole, (x, y), verbose=0, **{**W.FIT, "epochs": 3})
    for r in both:
        assert r["epochs"].tolist() == [0, 1, 2]  # the restored history and epoch 3
        assert_leaves_close(leaves_of(r, "resumed"), params(whole))
    np.testing.assert_array_equal(both[0]["resumed.0"], both[1]["resumed.0"])


def test_a_two_process_checkpoint_restores_in_one_process_replicated_or_fsdp(ckpt_group):
    out, _, both = ckpt_group
    model = W.make_model()
    assert load_checkpoint(out / "ckpt", model)["epoch"] == 2
    assert_leaves_close(params(model), leaves_of(both[0], "resumed"))
    assert_leaves_close(params(nnjax.load(out / "ckpt")), leaves_of(both[0], "resumed"))
    _, p, rest = step.split_model(W.make_model())
    tx = optimizers.accumulate(optimizers.get_optimizer("adam"), 1)
    state = TrainState(p, optimizers.init_state(tx, p, learning_rate=0.02), rest)
    layout = sharding.state_layout(state, sharding.make_mesh(jax.devices()), "fsdp")
    restored, _, epoch, _ = resume.resume_state(
        out / "ckpt", state, W.FIT["seed"], shardings=layout.shardings()
    )
    got = jax.tree.leaves(restored.params)
    assert epoch == 3 and [a.sharding for a in got] == jax.tree.leaves(layout.shardings().params)
    kernel = restored.params["layers"][0]["kernel"][...]
    assert [s.data.shape for s in kernel.addressable_shards] == [(6, 4)] * 4  # (6, 16) split
    assert_leaves_close(jax.tree.leaves(restored.params), leaves_of(both[0], "resumed"))
