"""A process killed mid-run: the others fail fast with a clear error, and --resume finishes.

The one kill scenario of the suite, in two halves that run at the same time:

* ``nnjax launch --processes 2 -- python -m nnjax.cli train ...`` (each process one CPU
  device: the group splits each batch over 2 devices; process 0 writes the run folder).
  Process 1 is SIGKILLed after the checkpoint of epoch 2 (as the OOM killer or a lost
  host would); the launch fails within a bound with a line naming the process and the
  signal. The same launch with ``--resume`` continues after the last checkpoint and ends
  with every epoch in ``history.csv`` and a model equal (up to float32 reassociation)
  to an uninterrupted one-process run (this process, over its 4 devices, meanwhile).
  The resuming launch first runs ``nnjax evaluate`` and ``nnjax predict`` of that
  one-process run (``_commands.py``: the three commands in each process, one JAX
  start-up): evaluate joins the group, and both print what they print in one process,
  once.
* Without the launcher, so that nothing else stops it (``_worker.py crash``): process 1
  of a 2-process group dies; process 0, blocked in a collective, is ended by JAX's
  heartbeat check within a bound, with a message naming the dead task.

The launcher runs here (``cli.main(["launch", ...])``, the code of the ``nnjax launch``
command) rather than in a process of its own (which would import JAX for nothing);
the launched processes share a JAX compilation cache, so the resumed run loads the
programs that the first run compiled. Every wait is bounded.
"""

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import redirect_stdout

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import cli, distributed
from nnjax.distributed import launcher
from nnjax.distributed.process import ENV_ADDRESS, ENV_NUM_PROCESSES, ENV_PROCESS_ID
from nnjax.train.checkpoint import latest_epoch

from ._group import HERE, env

WORKER = os.path.join(HERE, "_worker.py")
COMMANDS = os.path.join(HERE, "_commands.py")
CRASH_HEARTBEAT_S = 5  # _worker.py's crash mode: initialize(heartbeat_timeout_s=5)
EPOCHS = 5
TRAIN = ["train", "--dataset", "moons", "--limit", "400", "--hidden", "16"]
TRAIN += ["--epochs", str(EPOCHS), "--lr", "0.003", "--verbose", "2"]
# 5 epochs of Adam on float32 sums split over 2 vs 4 devices: the rounding differences
# (~1e-7 per sum) left the weights within 6e-8 of each other (measured; the test prints
# the largest difference); 1e-6 leaves room, and is far below what a lost, repeated or
# skipped epoch moves them (~1e-3 at lr 3e-3: each Adam update moves every weight by
# about the learning rate).
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture
def launched_env(monkeypatch, tmp_path):
    """What the launched processes inherit: this checkout, 1 CPU device, a shared JAX cache."""
    assert jax.device_count() == 4  # this process's devices exist before XLA_FLAGS goes
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def _launch(*command, timeout_s=150):
    return ["launch", "--processes", "2", "--timeout", str(timeout_s), "--", *command]


def _train(out, *extra):
    return _launch(sys.executable, "-m", "nnjax.cli", *TRAIN, "--out", str(out), *extra)


def _in_thread(argv):
    """Runs ``cli.main(argv)`` in a thread; returns the thread and its result (``status``)."""
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(status=cli.main(argv)))
    thread.start()
    return thread, done


def _children():
    """``{pid: environment}`` of this process's child processes."""
    out = {}
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != os.getpid():
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                pairs = [v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out[pid] = {**dict(pairs), b"cmdline": f.read()}
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
    return out


def _trainer(index, out):
    """The pid of process ``index`` of the launched `nnjax train --out OUT`."""
    mine, named = str(index).encode(), str(out).encode()
    found = [
        pid
        for pid, seen in _children().items()
        if seen.get(ENV_PROCESS_ID.encode()) == mine and named in seen[b"cmdline"]
    ]
    assert len(found) == 1, found
    return found[0]


def _kill_process_1_after_epoch_2(launch, out, timeout_s=120):
    """Waits for the checkpoint of epoch 2, then SIGKILLs process 1; returns the time."""
    end = time.monotonic() + timeout_s
    while (latest_epoch(out / "checkpoint") or -1) < 1:
        assert launch.is_alive(), "the launch ended before its second epoch"
        assert time.monotonic() < end, "no checkpoint of epoch 2 in time"
        time.sleep(0.05)
    os.kill(_trainer(1, out), signal.SIGKILL)
    return time.monotonic()


def _kill_leftovers(folder):
    """After a failure: kills the processes this test started (their commands name
    ``folder``) that still run; never others (the 2-process group runs meanwhile)."""
    for pid, seen in _children().items():
        if ENV_PROCESS_ID.encode() in seen and str(folder).encode() in seen[b"cmdline"]:
            os.kill(pid, signal.SIGKILL)


def _start_crash_group(folder):
    """``_worker.py crash`` in 2 processes without the launcher; a thread watches them."""
    folder.mkdir()
    held = contextlib.ExitStack()  # the coordinator's port, until both have ended
    address = f"127.0.0.1:{held.enter_context(distributed.reserved_port())}"
    procs = []
    for i in range(2):
        ids = {ENV_ADDRESS: address, ENV_NUM_PROCESSES: "2", ENV_PROCESS_ID: str(i)}
        with open(folder / f"err{i}.txt", "w") as err:
            command = [sys.executable, WORKER, str(folder), "crash"]
            procs.append(subprocess.Popen(command, env={**os.environ, **ids}, stderr=err))
    seen: dict = {}

    def watch():
        with held:
            seen["status1"] = _wait(procs[1], 180)
            died = time.monotonic()
            seen["status0"] = _wait(procs[0], 4 * CRASH_HEARTBEAT_S)
            seen["waited"] = time.monotonic() - died

    thread = threading.Thread(target=watch)
    thread.start()
    return thread, seen


def _wait(proc, timeout_s):
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _params(folder):
    model, _ = nnjax.load(folder)
    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _kept(run):
    """The checkpoints in a run folder (not a write the kill may have cut: hidden names)."""
    return sorted(n for n in os.listdir(run / "checkpoint") if not n.startswith("."))


def _history(folder):
    with open(folder / "history.csv") as f:
        return list(csv.DictReader(f))


def _here(argv):
    """``cli.main(argv)`` in this process (1 process, 4 devices): (status, stdout)."""
    text = io.StringIO()
    with redirect_stdout(text):
        status = cli.main(argv)
    return status, text.getvalue()


def _scores(line):
    """``{name: value}`` of an `nnjax evaluate` line (``... : test loss: 0.1, ...``)."""
    pairs = line.split("): ", 1)[1].split(", ")
    return {k: float(v) for k, v in (p.rsplit(": ", 1) for p in pairs)}


@pytest.mark.slow  # two 2-process launches and a crashing pair: ~40 s on a 2-core machine
def test_a_killed_process_fails_the_group_fast_and_resume_finishes_the_run(
    tmp_path, capfd, launched_env
):
    crash, seen = _start_crash_group(tmp_path / "crash")
    out, ref = tmp_path / "run", tmp_path / "reference"
    launch, launched = _in_thread(_train(out))
    reference, referenced = _in_thread([*TRAIN, "--out", str(ref), "--quiet"])
    try:
        killed = _kill_process_1_after_epoch_2(launch, out)
        launch.join(timeout=launcher.GRACE_S + 20)
        waited = time.monotonic() - killed
        crash.join(timeout=200)
    finally:
        _kill_leftovers(tmp_path)
        launch.join(timeout=30)
        reference.join(timeout=200)
    err = capfd.readouterr().err
    assert launched.get("status", 0) != 0, err
    assert "nnjax launch: process 1 of 2 was killed by SIGKILL (exit status 137)" in err
    # the launcher interrupts process 0 (SIGINT; SIGTERM and SIGKILL after 5 and 10 s):
    # measured 5.1 s after the kill (11.5 s, loaded, when SIGTERM came first)
    assert waited < launcher.GRACE_S + 10, f"the launch took {waited:.1f} s to fail"
    saved = latest_epoch(out / "checkpoint")
    assert saved is not None and 1 <= saved < EPOCHS - 1, "not killed mid-run"
    # the last complete epoch (and, killed between a commit and the removal of the one
    # before, that one: max_to_keep=1); a cut write has a hidden name
    assert _kept(out)[-1] == str(saved + 1) and len(_kept(out)) <= 2

    # without the launcher, process 0 fails on its own: JAX's heartbeat check
    crash_err = (tmp_path / "crash" / "err0.txt").read_text()
    assert seen.get("status1") == 3, seen  # process 1 died (os._exit(3)), as planned
    assert seen.get("status0") not in (None, 0), f"process 0 did not fail on its own: {seen}"
    assert seen["waited"] < 4 * CRASH_HEARTBEAT_S
    assert "another task died" in crash_err and "stopped sending heartbeats" in crash_err
    assert not (tmp_path / "crash" / "0.json").exists()

    # the resuming launch: evaluate and predict the one-process run, then resume
    inputs = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", inputs)
    predict = ["predict", str(ref), str(tmp_path / "inputs.npy")]
    commands = [sys.executable, COMMANDS, "evaluate", str(ref), "--then", *predict]
    commands += ["--output", str(tmp_path / "launched.npy"), "--then", *TRAIN]
    assert cli.main(_launch(*commands, "--out", str(out), "--resume")) == 0
    printed = capfd.readouterr().out
    assert f"(resuming after epoch {saved + 1}; 2 processes, 2 devices)" in printed
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    assert _kept(out) == [str(EPOCHS)]
    assert referenced.get("status") == 0
    want = _history(ref)
    for got_row, want_row in zip(rows, want, strict=True):
        for key in want_row:
            np.testing.assert_allclose(float(got_row[key]), float(want_row[key]), RTOL, ATOL)
    worst = 0.0
    for got, expected in zip(_params(out), _params(ref), strict=True):
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
        worst = max(worst, float(np.max(np.abs(got - expected))))
    print(f"failed {waited:.2f} s after the kill; resumed weights within {worst:.2e}")

    # evaluate and predict under the launcher: one group, process 0 prints and writes
    status, alone = _here(["evaluate", str(ref)])
    assert status == 0
    (line,) = [x for x in printed.splitlines() if "(after epoch" in x]  # printed once
    (want_line,) = [x for x in alone.splitlines() if "(after epoch" in x]
    assert line.split("): ")[0] == want_line.split("): ")[0] == f"{ref} (after epoch {EPOCHS}"
    got, want = _scores(line), _scores(want_line)
    assert got.keys() == want.keys() == {"test loss", "test accuracy"}
    for key in got:  # printed to 4 decimals
        np.testing.assert_allclose(got[key], want[key], atol=1.5e-4, err_msg=key)
    status, alone = _here([*predict, "--output", str(tmp_path / "alone.npy")])
    assert status == 0
    rows = [x for x in printed.splitlines() if x[:1].isdigit() and "\t" in x]
    assert [r.split("\t")[0] for r in rows] == [str(i) for i in range(len(inputs))]  # once
    assert len(alone.splitlines()) == len(inputs)
    np.testing.assert_allclose(
        np.load(tmp_path / "launched.npy"), np.load(tmp_path / "alone.npy"), rtol=1e-5, atol=1e-6
    )


def test_launch_names_a_killed_process_and_stops_the_others_within_a_bound(capfd):
    suicide = "import os, signal, sys, time\n"
    suicide += "if os.environ['NNJAX_PROCESS_ID'] == '1': os.kill(os.getpid(), signal.SIGKILL)\n"
    suicide += "time.sleep(60)"
    start = time.monotonic()
    status = launcher.launch([sys.executable, "-c", suicide], processes=2, timeout_s=60)
    assert status == 128 + signal.SIGKILL
    assert time.monotonic() - start < 15  # not the 60 s of process 0's sleep
    err = capfd.readouterr().err
    assert "nnjax launch: process 1 of 2 was killed by SIGKILL (exit status 137)" in err
    assert "stopping the other 1 running process(es)" in err


@pytest.mark.parametrize(
    ("code", "line"),
    [(-9, "process 1 of 3 was killed by SIGKILL (exit status 137)"), (2, "exited with status 2")],
)
def test_describe_and_exit_status(code, line):
    assert line in launcher.describe(1, 3, code)
    assert launcher.exit_status(code) == (137 if code == -9 else code)
