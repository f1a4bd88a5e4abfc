"""Checkpoints of a 2-process fit with param_sharding="fsdp": collective, and portable.

This process (1 process, 4 devices) trains one epoch and checkpoints it; a group of 2
processes x 2 CPU devices (``_ckpt_worker.py fit``) restores that checkpoint straight
onto the FSDP layout (each process reading its shards), resumes it to epoch 2 with
``ModelCheckpoint`` (each process writing its shards, nothing gathered), then resumes
a fresh run from its own checkpoint to epoch 3. The result equals an uninterrupted
one-process run, and the checkpoint the two processes wrote restores here. Every wait
is bounded (the launcher's timeout; ``initialize(timeout_s=60, heartbeat_timeout_s=10)``
in the workers).
"""

import importlib.util
import os

import jax
import numpy as np
import pytest

import nnjax
from nnjax import train
from nnjax.train import optimizers, resume, sharding, step
from nnjax.train.checkpoint import ModelCheckpoint, load_checkpoint
from nnjax.train.state import TrainState

from .test_fit import HERE, W, assert_leaves_close, leaves_of, params

_WORKER = os.path.join(HERE, "_ckpt_worker.py")
_spec = importlib.util.spec_from_file_location("_ckpt_worker", _WORKER)
CKPT = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(CKPT)

pytestmark = pytest.mark.slow  # one 2-process group: ~60 s on a shared 2-core machine


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit_group")
    (x, y), _ = W.dataset()
    first = W.make_model()
    callbacks = [ModelCheckpoint(out / "one_ckpt")]
    train.fit(first, (x, y), verbose=0, callbacks=callbacks, **{**W.FIT, "epochs": 1})
    return out, params(first), CKPT.run_group(out, "fit", timeout_s=240.0)


def test_a_one_process_checkpoint_restores_onto_fsdp_shards_of_two_processes(group):
    _, first, results = group
    for r in results:
        assert bool(r["sharded_restore"]) and bool(r["restore_layout"])
        np.testing.assert_array_equal(r["restored_kernel"], first[1])  # layers/0/kernel


def test_collective_checkpoints_gather_nothing(group):
    out, _, results = group
    for r in results:
        assert int(r["gathers"]) == 0
    for item in ("state", "opt_state"):
        files = os.listdir(out / "ckpt" / "3" / item)
        assert "ocdbt.process_0" in files and "ocdbt.process_1" in files


def test_fsdp_resume_over_two_processes_equals_an_uninterrupted_run(group):
    _, _, results = group
    (x, y), _ = W.dataset()
    whole = W.make_model()
    train.fit(whole, (x, y), verbose=0, **{**W.FIT, "epochs": 3})
    for r in results:
        assert r["epochs"].tolist() == [0, 1, 2]  # the restored history and epoch 3
        assert_leaves_close(leaves_of(r, "resumed"), params(whole))
    np.testing.assert_array_equal(results[0]["resumed.0"], results[1]["resumed.0"])


def test_a_two_process_checkpoint_restores_in_one_process_replicated_or_fsdp(group):
    out, _, results = group
    model = W.make_model()
    assert load_checkpoint(out / "ckpt", model)["epoch"] == 2
    assert_leaves_close(params(model), leaves_of(results[0], "resumed"))
    assert_leaves_close(params(nnjax.load(out / "ckpt")), leaves_of(results[0], "resumed"))
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
    assert_leaves_close(jax.tree.leaves(restored.params), leaves_of(results[0], "resumed"))
