"""fit/evaluate/predict over 2 processes x 2 CPU devices equal the 1-process 4-device run.

One group of 2 processes (``_fit_worker.py train``, started once for the module) trains
on arrays, an iterable (each process yields its rows of each global batch), a memmap
and with ``param_sharding="fsdp"``, evaluates, predicts and writes checkpoints; the
tests compare every result with the same calls in this (one) process over its 4
devices. Every wait is bounded: the launcher's timeout, ``initialize(timeout_s=60,
heartbeat_timeout_s=10)`` in the workers. Slow: the group takes about 80 s on a shared
2-core machine (one compile per fit and process).
"""

import importlib.util
import os
import sys
import time

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import distributed, train
from nnjax.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # one 2-process group of ~80 s, shared by the tests below

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "_fit_worker.py")
ROOT = os.path.dirname(os.path.dirname(nnjax.__file__))
_spec = importlib.util.spec_from_file_location("_fit_worker", WORKER)
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)

ATOL = 1e-5  # float32 sums reassociated across devices and processes


def run_group(out_dir, mode, timeout_s=150.0):
    """Runs the 2-process worker group; returns (status, seconds)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    env.pop("XLA_FLAGS", None)
    start = time.monotonic()
    status = distributed.launch(
        [sys.executable, WORKER, str(out_dir), mode], processes=2, timeout_s=timeout_s, env=env
    )
    return status, time.monotonic() - start


def load(out_dir, index):
    with np.load(os.path.join(out_dir, f"{index}.npz")) as f:
        return dict(f)


def leaves_of(results, name):
    keys = [k for k in results if k.startswith(f"{name}.")]
    return [results[k] for k in sorted(keys, key=lambda k: int(k.rsplit(".", 1)[1]))]


def params(model):
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    out = tmp_path_factory.mktemp("group")
    (x, _), _ = W.dataset()
    np.save(out / "x.npy", x)
    status, seconds = run_group(out, "train")
    logs = "\n".join(p.read_text() for p in sorted(out.glob("*.log")))
    assert status == 0, f"the 2-process group failed with status {status}:\n{logs}"
    print(f"2-process group: {seconds:.1f} s")
    return out, [load(out, i) for i in range(2)]


@pytest.fixture(scope="module")
def reference():
    """The same calls in this process, over its 4 devices."""
    assert jax.device_count() == 4
    (x, y), val = W.dataset()
    model = W.make_model()
    hist = train.fit(model, (x, y), validation_data=val, verbose=0, **W.FIT)
    out = {"model": model, "arrays": params(model), "history": hist.history}
    out["evaluate"] = train.evaluate(model, val, loss="cross_entropy", batch_size=8)
    out["predict"] = train.predict(model, val[0], batch_size=8)
    out["predict_iterable"] = train.predict(model, W.global_batches(*val, size=8))
    iterable = W.make_model()
    train.fit(iterable, W.global_batches(x, y), verbose=0, **W.FIT)
    out["iterable"] = params(iterable)
    return out


def assert_leaves_close(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=ATOL)


def test_every_process_ends_with_the_same_parameters(group):
    _, (r0, r1) = group
    for name in ("arrays", "iterable", "memmap", "fsdp"):
        for a, b in zip(leaves_of(r0, name), leaves_of(r1, name)):
            np.testing.assert_array_equal(a, b)


def test_fit_on_arrays_equals_the_one_process_run(group, reference):
    _, (r0, _) = group
    assert_leaves_close(leaves_of(r0, "arrays"), reference["arrays"])
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            r0[f"arrays_{name}"], reference["history"][name], rtol=1e-5, atol=ATOL
        )


def test_fit_on_an_iterable_of_process_blocks_equals_global_batches(group, reference):
    _, (r0, _) = group
    assert_leaves_close(leaves_of(r0, "iterable"), reference["iterable"])


def test_fit_on_a_memmap_equals_arrays(group, reference):
    _, (r0, _) = group
    assert_leaves_close(leaves_of(r0, "memmap"), reference["arrays"])


def test_fsdp_over_processes_equals_replicated(group, reference):
    _, (r0, _) = group
    assert_leaves_close(leaves_of(r0, "fsdp"), reference["arrays"])


def test_evaluate_and_predict_equal_the_one_process_run(group, reference):
    _, results = group
    want = reference["evaluate"]
    for r in results:
        np.testing.assert_allclose(r["evaluate"], [want["loss"], want["accuracy"]], atol=ATOL)
        np.testing.assert_allclose(r["predict"], reference["predict"], rtol=1e-5, atol=ATOL)
        assert r["predict_iterable"].shape == (W.N_VAL, W.CLASSES)
        np.testing.assert_allclose(
            r["predict_iterable"], reference["predict_iterable"], rtol=1e-5, atol=ATOL
        )


def test_only_process_0_prints(group):
    out, _ = group
    first, second = (out / "0.log").read_text(), (out / "1.log").read_text()
    assert "Epoch 1/2" in first and "Epoch 2/2" in first
    assert second == ""


def test_checkpoints_written_by_two_processes_restore_in_one(group):
    out, (r0, _) = group
    model = W.make_model()
    meta = load_checkpoint(out / "ckpt", model)
    assert meta["epoch"] == W.FIT["epochs"] - 1
    assert_leaves_close(params(model), leaves_of(r0, "fsdp"))
    loaded = nnjax.load(out / "saved")
    assert_leaves_close(params(loaded), leaves_of(r0, "fsdp"))
