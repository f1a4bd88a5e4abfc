"""sweep over 2 processes x 2 CPU devices equals the 1-process 4-device sweep.

One group of 2 processes (``_sweep_worker.py``, started once for the module) runs a
sweep of 3 members with per-member early stopping and checkpoints, then the same sweep
cut after epoch 2 and resumed from its checkpoints; this process runs the same calls
over its 4 devices, while the group runs. Every wait is bounded: the launcher's timeout and
``initialize(timeout_s=60, heartbeat_timeout_s=10)`` in the workers. Slow: the group
takes about 40 s on a shared 2-core machine (the start of two JAX processes and one
compile per process).
"""

import csv
import importlib.util
import os
import sys
import threading
import time

import jax
import numpy as np
import pytest

import nnjax
from nnjax import distributed

pytestmark = pytest.mark.slow  # one 2-process group, shared by the tests below

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "_sweep_worker.py")
ROOT = os.path.dirname(os.path.dirname(nnjax.__file__))
_spec = importlib.util.spec_from_file_location("_sweep_worker", WORKER)
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)

ATOL = 1e-5  # float32 sums reassociated across devices and processes


def _launch(out, done):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    env.pop("XLA_FLAGS", None)
    start = time.monotonic()
    done["status"] = distributed.launch(
        [sys.executable, WORKER, str(out)], processes=2, timeout_s=150, env=env
    )
    done["seconds"] = time.monotonic() - start


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 2-process group, and (meanwhile, in this process over its 4 devices) the same sweeps."""
    assert jax.device_count() == 4
    out, ref_out = tmp_path_factory.mktemp("sweep_group"), tmp_path_factory.mktemp("sweep_ref")
    done: dict = {}
    launcher = threading.Thread(target=_launch, args=(out, done))
    launcher.start()
    try:
        whole, resumed = W.run_sweeps(str(ref_out))
        (_, _), (x_val, _) = W.dataset()
        whole.to_csv(ref_out / "result.csv")
        reference = (ref_out, W.summary(whole, x_val), W.summary(resumed, x_val), whole)
    finally:
        launcher.join(timeout=200)  # the launcher's own timeout ends it before this
    logs = "\n".join(p.read_text() for p in sorted(out.glob("*.log")))
    assert done.get("status") == 0, f"the 2-process sweep failed: {done}:\n{logs}"
    print(f"2-process sweep group: {done['seconds']:.1f} s")
    results = []
    for i in range(2):
        with np.load(out / f"{i}.npz") as f:
            results.append(dict(f))
    return (out, results), reference


@pytest.fixture(scope="module")
def group(runs):
    return runs[0]


@pytest.fixture(scope="module")
def reference(runs):
    return runs[1]


def test_the_sweep_spans_both_processes_and_every_process_holds_the_same_result(group):
    _, (r0, r1) = group
    assert int(r0["devices"]) == int(r1["devices"]) == 4
    assert set(r0) == set(r1)
    for name in r0:
        np.testing.assert_array_equal(r0[name], r1[name], err_msg=name)


def test_two_processes_equal_one_process_on_the_same_global_batches(group, reference):
    _, (r0, _) = group
    _, whole, _, result = reference
    assert (result.stopped_epoch >= 0).any()  # early stopping acted on some member
    for name, want in whole.items():
        got = r0[f"whole.{name}"]
        if name.startswith("history."):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=ATOL, err_msg=name)
        elif got.dtype.kind in "iub" or name == "best_index":
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=ATOL, err_msg=name)


def test_a_cut_sweep_resumes_from_its_checkpoints_over_two_processes(group):
    out, (r0, _) = group
    for name in [k for k in r0 if k.startswith("whole.")]:
        # every process takes the same code path, so the resumed run is bitwise the same
        np.testing.assert_array_equal(r0[name], r0["resumed." + name[len("whole.") :]], name)
    assert sorted(os.listdir(out / "cut")) == ["group_0"]


def test_only_process_0_writes_the_csv_and_prints(group, reference):
    out, (r0, _) = group
    ref_out, *_ = reference
    assert (out / "result0.csv").is_file() and not (out / "result1.csv").exists()
    got = list(csv.DictReader(open(out / "result0.csv")))
    want = list(csv.DictReader(open(ref_out / "result.csv")))
    assert [r["member"] for r in got] == [r["member"] for r in want] == ["0", "1", "2"]
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(
                float(a[key]), float(b[key]), rtol=1e-4, atol=1e-6, err_msg=key
            )
    assert "member" in str(r0["table"])
    assert (out / "1.log").read_text() == ""
