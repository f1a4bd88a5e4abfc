"""``nnjax launch`` stops its processes promptly, and none outlives it.

* a stop sends SIGINT first: a process that joined the JAX group (whose preemption
  service would catch SIGTERM and go on) ends as after Ctrl-C, well within
  :data:`~nnjax.distributed.launcher.GRACE_S`;
* a process of a group whose command fails with a one-line error ends at once, so
  the launch reports it instead of waiting in JAX's shutdown barrier;
* on Linux, a SIGKILLed launcher takes its processes with it.

Every wait is bounded; leftovers are killed.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from nnjax import distributed
from nnjax.distributed import launcher

from ._group import HERE, env
from ._procs import gone, launched, sleeper

WORKER = os.path.join(HERE, "_stop_worker.py")
#: Long enough for both processes to start and join the group on a loaded machine.
JOIN_S = 10.0


def _launch(folder, mode, timeout_s):
    """``launch`` of ``_stop_worker.py FOLDER MODE`` in 2 processes: (status, seconds)."""
    start = time.monotonic()
    command = [sys.executable, WORKER, str(folder), mode]
    status = distributed.launch(command, 2, timeout_s=timeout_s, env=env())
    return status, time.monotonic() - start


def test_a_stop_interrupts_first(tmp_path):
    record = tmp_path / "got"
    code = "import signal, sys, time\n"
    code += "def got(signum, frame):\n"
    code += f"    open({str(record)!r}, 'w').write(signal.Signals(signum).name)\n"
    code += "    sys.exit(0)\n"
    code += "signal.signal(signal.SIGINT, got)\n"
    code += "signal.signal(signal.SIGTERM, got)\n"
    code += "time.sleep(60)\n"
    assert distributed.launch([sys.executable, "-c", code], 1, timeout_s=2.0) == 124
    assert record.read_text() == "SIGINT"


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_timeout_stops_processes_that_joined_the_group_at_once(tmp_path):
    status, took = _launch(tmp_path, "wait", JOIN_S)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"joined0", "joined1"} <= names, f"not joined within {JOIN_S} s: {names}"
    assert status == 124
    assert took - JOIN_S < launcher.GRACE_S / 2, f"stopped {took - JOIN_S:.1f} s after it"
    assert {"stopped0", "stopped1"} <= names  # a KeyboardInterrupt, not a kill


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_a_failed_command_in_a_group_ends_the_launch_at_once(tmp_path, capfd):
    status, took = _launch(tmp_path, "fail1", 45.0)
    err = capfd.readouterr().err
    assert status == 2, err
    assert "nnjax evaluate: error:" in err
    assert "process 1 of 2 exited with status 2" in err
    assert took < 25  # not the 45 s timeout (process 1 waiting in the shutdown barrier)
    assert "stopped0" in {p.name for p in tmp_path.iterdir()}  # process 0: interrupted


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG: Linux")
def test_the_processes_of_a_killed_launcher_end_with_it():
    token = f"nnjax_launch_orphan_{uuid.uuid4().hex}"
    code = "import sys; from nnjax import distributed; "
    code += f"sys.exit(distributed.launch({sleeper(token)!r}, 2))"
    parent = subprocess.Popen(
        [sys.executable, "-c", code], env=env(), stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        launched(token, 2, launcher=parent)  # a miss says the launcher's state and children
        parent.kill()  # SIGKILL: the launcher can stop nothing
        assert parent.wait(timeout=10) == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
    assert gone(token, 5), "a launched process outlived its killed launcher"


@pytest.mark.slow  # two processes of `nnjax train` start and compile: ~10 s on 2 cores
def test_ctrl_c_to_the_launcher_while_compiling_leaves_no_run_folder(tmp_path):
    run, log = tmp_path / "run", tmp_path / "log.txt"
    train = [sys.executable, "-m", "nnjax.cli", "train", "--dataset", "digits", "--epochs"]
    train += ["50", "--verbose", "2", "--out", str(run)]
    command = [sys.executable, "-m", "nnjax.cli", "launch", "--timeout", "120", "--", *train]
    with open(log, "w") as out:
        parent = subprocess.Popen(
            command, env=env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        end = time.monotonic() + 90
        while "compiling the training step" not in log.read_text():
            assert parent.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.05)
        parent.send_signal(signal.SIGINT)
        start = time.monotonic()
        status = parent.wait(timeout=launcher.GRACE_S + 20)
        took = time.monotonic() - start
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        assert gone(str(run), 5), "a launched process outlived the launch"
    text = log.read_text()
    assert status == 130, text
    assert "nnjax train: interrupted" in text
    assert not run.exists(), f"left behind: {sorted(p.name for p in run.iterdir())}\n{text}"
    assert took < launcher.GRACE_S, text
