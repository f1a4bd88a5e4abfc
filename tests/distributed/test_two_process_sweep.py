"""sweep over 2 processes x 2 CPU devices equals the 1-process 4-device sweep.

The ``sweep`` scenario of the 2-process group (``_sweep_worker.py``; ``_group.py``: one
launch for the session) runs a sweep of 3 members with per-member early stopping and
checkpoints, then the same sweep cut after epoch 2 and resumed from its checkpoints;
this process runs the same calls over its 4 devices.
"""

import csv
import os

import jax
import numpy as np
import pytest

from ._group import ATOL, group, load_module, results

pytestmark = pytest.mark.slow  # the 2-process group (shared by every slow distributed test)
USES_TWO_PROCESS_GROUP = True  # conftest.py starts the group early, in the background

W = load_module("_sweep_worker")


@pytest.fixture(scope="module")
def sweep_group(tmp_path_factory):
    out = group(tmp_path_factory) / "sweep"
    return out, results(out.parent, "sweep")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same sweeps in this process, over its 4 devices."""
    assert jax.device_count() == 4
    ref_out = tmp_path_factory.mktemp("sweep_ref")
    whole, resumed = W.run_sweeps(str(ref_out))
    (_, _), (x_val, _) = W.dataset()
    whole.to_csv(ref_out / "result.csv")
    return ref_out, W.summary(whole, x_val), W.summary(resumed, x_val), whole


def test_the_sweep_spans_both_processes_and_every_process_holds_the_same_result(sweep_group):
    _, (r0, r1) = sweep_group
    assert int(r0["devices"]) == int(r1["devices"]) == 4
    assert set(r0) == set(r1)
    for name in r0:
        np.testing.assert_array_equal(r0[name], r1[name], err_msg=name)


def test_two_processes_equal_one_process_on_the_same_global_batches(sweep_group, reference):
    _, (r0, _) = sweep_group
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


def test_a_cut_sweep_resumes_from_its_checkpoints_over_two_processes(sweep_group):
    out, (r0, _) = sweep_group
    for name in [k for k in r0 if k.startswith("whole.")]:
        # every process takes the same code path, so the resumed run is bitwise the same
        np.testing.assert_array_equal(r0[name], r0["resumed." + name[len("whole.") :]], name)
    assert sorted(os.listdir(out / "cut")) == ["group_0"]


def test_only_process_0_writes_the_csv_and_prints(sweep_group, reference):
    out, (r0, _) = sweep_group
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
