"""Two JAX processes write one checkpoint collectively; it loads in any process count.

The ``io`` scenario of the 2-process group (``tests/distributed/_group.py``: one launch
of 2 processes x 2 CPU devices for the session; ``_ckpt_worker.py``) saves a model
whose first kernel is split over both processes (FSDP style): each process writes its
own shards (Orbax's multi-process save), nothing is gathered on one host, and this
process (1 process, 4 devices) loads the folder. Every process raises the same error
when the folder exists, when process 0 fails to commit, or when Orbax fails to write
process 1's shards (at once: not after Orbax's 300 s barrier timeout); the older folder
is kept, no temporary folder is left. A checkpoint written here, by one process, loads
into the 2 processes with the model's FSDP layout kept. The keys the writes exchange
through JAX's coordination service are deleted once read.
"""

import importlib.util
import os

import numpy as np
import pytest

import nnjax

_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "distributed", "_group.py")
_spec = importlib.util.spec_from_file_location("_group", _PATH)
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)
CKPT = G.CKPT

pytestmark = pytest.mark.slow  # the 2-process group (shared by every slow distributed test)
# tests/distributed/conftest.py starts the group early, in the background
USES_TWO_PROCESS_GROUP = True


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    out = G.group(tmp_path_factory)
    return out / "io", G.results(out, "io")


def kernel_of(seed):
    return np.asarray(CKPT.small_model(seed).layers[0].kernel[...])


def test_each_process_writes_its_own_shards_and_nothing_is_gathered(group):
    out, results = group
    for r in results:
        assert int(r["gathers"]) == 0  # the old save gathered every array on each host
    files = os.listdir(out / "saved" / "state")
    assert "ocdbt.process_0" in files and "ocdbt.process_1" in files


def test_a_checkpoint_of_two_processes_loads_in_one(group):
    out, results = group
    want = kernel_of(0)
    for r in results:
        np.testing.assert_array_equal(r["loaded"], want)
    np.testing.assert_array_equal(np.asarray(nnjax.load(out / "saved").layers[0].kernel[...]), want)
    meta = nnjax.io.layout.read_meta(out / "saved")
    assert meta["items"] == ["state"] and meta["kind"] == "model"


def test_every_process_raises_the_same_error_and_the_older_folder_survives(group):
    out, results = group
    for r in results:
        assert "already exists" in str(r["exists"])
        assert "No space left on device (simulated)" in str(r["failed"])
        np.testing.assert_array_equal(r["after_failure"], kernel_of(0))
    assert str(results[1]["failed"]).startswith("[Errno 28] process 0: No space left")
    assert sorted(os.listdir(out)) == [
        "0.log", "0.npz", "1.log", "1.npz", "one", "one.npy", "saved"
    ]  # fmt: skip


def test_a_failed_orbax_write_on_process_1_fails_every_process_at_once(group):
    _, results = group
    for r in results:
        assert "Input/output error writing shards (simulated)" in str(r["orbax_failed"])
        # Orbax's next barrier would have kept process 0 for 300 s; the group's launch
        # timeout (240 s) would end the test first
        assert float(r["orbax_failed_s"]) < 60
        np.testing.assert_array_equal(r["after_orbax_failure"], kernel_of(0))
    first = str(results[0]["orbax_failed"])  # names the folder, then process 1's cause
    assert first.startswith("[Errno 5] cannot write ") and ": process 1: Input/output" in first


def test_the_coordination_service_keeps_only_the_latest_write_s_keys(tmp_path_factory):
    """Each write's keys go once every process has read them (dozens of writes ran)."""
    from nnjax.io import _collective

    out = G.group(tmp_path_factory)
    for timing in G.timings(out):
        keys = timing["keys"]
        writes = {k.split("/")[1] for k in keys}
        assert all(k.startswith(_collective.ROOT + "/") for k in keys)
        assert len(writes) == 1 and len(keys) <= 3, keys  # arrays/0, arrays/1, commit
        assert int(writes.pop()) > 20  # the group wrote many checkpoints


def test_a_checkpoint_of_one_process_restores_into_fsdp_shards_of_two(group):
    _, results = group
    for r in results:
        assert bool(r["one_sharding_kept"]) and bool(r["one_shards_match"])


def test_flax_reads_the_state_the_two_processes_wrote(group):
    """Flax's guide restores ``state/`` onto other devices (an abstract target with shardings)."""
    import jax
    from flax import nnx

    ocp = pytest.importorskip("orbax.checkpoint")
    out, _ = group
    _, abstract = nnx.split(nnx.eval_shape(lambda: CKPT.small_model(0)))
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one), nnx.to_pure_dict(abstract)
    )
    restored = ocp.StandardCheckpointer().restore(out / "saved" / "state", target)
    np.testing.assert_array_equal(np.asarray(restored["layers"][0]["kernel"]), kernel_of(0))
