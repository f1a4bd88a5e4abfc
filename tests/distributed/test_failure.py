"""A process killed mid-run: the other fails fast with a clear error, and a resumed run ends right.

Process 1 of a 2-process ``fit`` (``_fit_worker.py kill``) dies after epoch 2 of 6 (as
a crash: ``os._exit``, no clean shutdown). Process 0, started without the launcher
so that nothing else stops it, must end on its own: JAX's coordination service sees
the missing heartbeats (``initialize(heartbeat_timeout_s=10)``) and aborts it with a
message naming the dead task. Then ``launch`` runs the group again with
``resume_from`` (what ``nnjax launch ... --resume`` does): it continues from the last
checkpoint and ends where an uninterrupted run ends. Slow: about 90 s on a shared
2-core machine.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from nnjax import distributed, train

from .test_fit import ROOT, WORKER, W, assert_leaves_close, leaves_of, load, params, run_group

pytestmark = pytest.mark.slow

HEARTBEAT_S = 10  # the workers' initialize(heartbeat_timeout_s=...)


def _start(out_dir, mode):
    address = f"127.0.0.1:{distributed.free_port()}"
    procs = []
    for i in range(2):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
        env.pop("XLA_FLAGS", None)
        env |= {
            distributed.ENV_ADDRESS: address,
            distributed.ENV_NUM_PROCESSES: "2",
            distributed.ENV_PROCESS_ID: str(i),
        }
        err = open(os.path.join(out_dir, f"err{i}.txt"), "w")
        command = [sys.executable, WORKER, str(out_dir), mode]
        procs.append(subprocess.Popen(command, env=env, stderr=err))
    return procs


def _wait(proc, timeout_s):
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def test_a_killed_process_stops_the_other_and_resume_continues(tmp_path):
    procs = _start(tmp_path, "kill")
    assert _wait(procs[1], 180) == 9  # died after epoch 2 (0-based 1), as planned
    died = time.monotonic()
    status = _wait(procs[0], 4 * HEARTBEAT_S)
    waited = time.monotonic() - died
    err = (tmp_path / "err0.txt").read_text()
    assert status not in (None, 0), f"process 0 did not fail on its own within {waited:.0f} s"
    assert waited < 4 * HEARTBEAT_S
    assert "another task died" in err and "stopped sending heartbeats" in err
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["1", "2"]  # epochs 1 and 2 (1-based)

    status, _ = run_group(tmp_path, "resume")
    assert status == 0
    results = [load(tmp_path, i) for i in range(2)]
    assert results[0]["epochs"].tolist() == [0, 1, 2, 3, 4, 5]
    whole = W.make_model()
    (x, y), _ = W.dataset()
    train.fit(whole, (x, y), verbose=0, **{**W.FIT, "epochs": 6})
    for r in results:
        assert_leaves_close(leaves_of(r, "resumed"), params(whole))
    np.testing.assert_array_equal(results[0]["resumed.0"], results[1]["resumed.0"])
