"""A failing or mismatched process ends the 2-process group within a bound, with a message.

* An uncaught exception in one process during ``fit`` (``_failure_worker.py raise``):
  under ``nnjax launch`` and without it, both processes end with status 1 within a
  bound, and the traceback is printed (``initialize`` installs an excepthook that exits
  at once instead of waiting in JAX's shutdown barrier while the other process waits
  in an all-reduce).
* ``fit`` given different settings in the two processes (``_failure_worker.py
  mismatch``): a ``ValueError`` in both, naming the setting and each process's value,
  before anything trains; a process that never reaches ``fit``: a ``TimeoutError``
  naming it after ``agreement.WAIT_S``.

Every wait is bounded; every process started here runs in a session of its own and
its group is killed at the end.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nnjax import distributed
from nnjax.distributed.process import ENV_ADDRESS, ENV_NUM_PROCESSES, ENV_PROCESS_ID

from ._group import HERE, env

pytestmark = pytest.mark.slow  # 2-process groups: ~15-30 s each on a 2-core machine
WORKER = os.path.join(HERE, "_failure_worker.py")
#: The group's processes start (import JAX, join) within this on a loaded 2-core machine.
START_S = 60
#: After process 1 raises, both processes end within this (JAX's defaults: 300 s).
END_S = 30


def _start(out, mode, port):
    """The 2 processes of ``_failure_worker.py MODE`` without the launcher (own sessions).

    ``port``: the coordinator's, held by the caller (``distributed.reserved_port``) until
    the processes have ended.
    """
    address = f"127.0.0.1:{port}"
    procs = []
    for i in range(2):
        ids = {ENV_ADDRESS: address, ENV_NUM_PROCESSES: "2", ENV_PROCESS_ID: str(i)}
        with open(out / f"err{i}.txt", "w") as err:
            procs.append(
                subprocess.Popen(
                    [sys.executable, WORKER, str(out), mode],
                    env={**env(), **ids},
                    stderr=err,
                    start_new_session=True,
                )
            )
    return procs


def _wait_all(procs, timeout_s):
    """Each process's exit status (``None``: still running at the deadline, then killed)."""
    end = time.monotonic() + timeout_s
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(0.1, end - time.monotonic())))
        except subprocess.TimeoutExpired:
            codes.append(None)
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    return codes


def _started(out):
    """Whether both processes have printed ``started`` (joined the group) on stderr."""
    return all("started" in (out / f"err{i}.txt").read_text() for i in range(2))


def test_an_exception_in_one_process_ends_both_without_the_launcher(tmp_path):
    with distributed.reserved_port() as port:
        procs = _start(tmp_path, "raise", port)
        deadline = time.monotonic() + START_S
        while not _started(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        began = time.monotonic()
        codes = _wait_all(procs, END_S + 5)
        took = time.monotonic() - began
    errs = [(tmp_path / f"err{i}.txt").read_text() for i in range(2)]
    assert codes == [1, 1], (codes, errs)
    assert took < END_S, f"the group took {took:.1f} s to end: {errs}"
    assert "RuntimeError: deliberate failure" in errs[1]
    assert "Traceback" in errs[1] and "process 1 ends at once (status 1)" in errs[1]
    assert "process 0 ends at once (status 1)" in errs[0]  # its next all-reduce failed
    assert "fit returned" not in errs[0]


def test_an_exception_in_one_process_fails_the_launch(tmp_path, capfd):
    start = time.monotonic()
    status = distributed.launch(
        [sys.executable, WORKER, str(tmp_path), "raise"], 2, timeout_s=START_S + END_S, env=env()
    )
    took = time.monotonic() - start
    err = capfd.readouterr().err
    assert status == 1, err
    assert took < START_S + END_S - 5, err  # not the launcher's timeout (124)
    assert "RuntimeError: deliberate failure" in err
    assert "nnjax launch: process 1 of 2 exited with status 1" in err


@pytest.fixture(scope="module")
def mismatches(tmp_path_factory):
    out = tmp_path_factory.mktemp("mismatch")
    with distributed.reserved_port() as port:
        procs = _start(out, "mismatch", port)
        codes = _wait_all(procs, START_S + 120)
    errs = [(out / f"err{i}.txt").read_text() for i in range(2)]
    assert codes == [0, 0], (codes, errs)
    return [json.loads((out / f"{i}.json").read_text()) for i in range(2)]


@pytest.mark.parametrize(
    ("case", "field", "values"),
    [
        ("len", "number of examples", ("64", "80")),
        ("batch", "batch_size", ("16", "32")),
        ("epochs", "epochs", ("1", "2")),
        ("steps", "steps per epoch", ("3", "2")),
        ("seed", "seed", ("3", "4")),
        ("lr", "learning_rate", ("0.02", "0.05")),
        ("optimizer", "optimizer", ("'adam'", "'sgd'")),
        ("modelseed", "parameters", ("checksum", "checksum")),
        ("val", "validation data", ("'2 batches'", "None")),
        ("ckpt", "ModelCheckpoint directories", ("['/", "[]")),
        ("dtype", "bytes per batch", ("288", "192")),  # float32 / float16 inputs, 8 rows
    ],
)
def test_different_settings_are_named_in_every_process(mismatches, case, field, values):
    for seen in mismatches:
        message = seen[case]
        assert message.startswith("fit: the 2 processes were given different runs"), message
        line = next(x for x in message.splitlines() if x.strip().startswith(f"{field}:"))
        first, second = line.split("; process 1: ")
        assert f"process 0: {values[0]}" in first and second.startswith(values[1]), line
    assert mismatches[0][case] == mismatches[1][case]


def test_the_same_settings_train_and_keys_are_deleted(mismatches):
    assert [seen["same"] for seen in mismatches] == ["ok", "ok"]
    for seen in mismatches:  # at most process 0's key of the call process 1 skipped
        assert set(seen["keys"]) <= {"nnjax_fit_agreement/12/0"}, seen["keys"]


def test_a_process_that_never_reaches_fit_is_named_after_a_bounded_wait(mismatches):
    seen = mismatches[0]
    assert "process(es) 1 of 2 did not reach fit within 3 s" in seen["missing"]
    assert 2.5 < seen["missing_seconds"] < 20
