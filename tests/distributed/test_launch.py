"""nnjax.distributed.launch: N local processes; a timeout stops them all; bad arguments.

The launched JAX group itself is checked by the ``allreduce`` scenario of the 2-process
group (``test_two_process_fit.py``), a failing process by ``test_cli_resume.py``.
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
from nnjax.distributed import launcher as launcher_module

from ._group import env
from ._procs import gone as _gone
from ._procs import launched
from ._procs import sleeper as _sleeper


def test_timeout_stops_every_process():
    start = time.monotonic()
    status = distributed.launch(
        [sys.executable, "-c", "import time; time.sleep(60)"], processes=2, timeout_s=1.0
    )
    assert status == 124
    assert time.monotonic() - start < 15


@pytest.mark.parametrize(
    ("command", "processes", "match"),
    [([], 2, "`command`"), ("python x.py", 2, "`command`"), (["true"], 0, "`processes`")],
)
def test_bad_arguments(command, processes, match):
    with pytest.raises(ValueError, match=match):
        distributed.launch(command, processes)


def test_free_port_is_bindable():
    import socket

    port = distributed.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_reserved_port_is_refused_to_others_and_left_to_the_coordinator():
    import errno
    import socket

    from nnjax.distributed import process

    with distributed.reserved_port() as port:
        with socket.socket() as other, pytest.raises(OSError) as refused:
            other.bind(("127.0.0.1", port))
        assert refused.value.errno == errno.EADDRINUSE
        process._check_port_free(f"127.0.0.1:{port}")  # process 0's own check passes
        with socket.socket() as grpc_like:  # binds and listens as gRPC does
            grpc_like.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            grpc_like.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            grpc_like.bind(("127.0.0.1", port))
            grpc_like.listen()
    with socket.socket() as later:  # free again after the block
        later.bind(("127.0.0.1", port))


def test_launch_holds_the_coordinators_port_while_its_processes_run():
    probe = (
        "import os, socket, sys\n"
        "port = int(os.environ['NNJAX_COORDINATOR_ADDRESS'].rpartition(':')[2])\n"
        "try:\n"
        "    socket.socket().bind(('127.0.0.1', port))\n"
        "except OSError:\n"
        "    sys.exit(0)  # held for the coordinator\n"
        "sys.exit(3)\n"
    )
    assert distributed.launch([sys.executable, "-c", probe], processes=2) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_every_process(signum):
    token = f"nnjax_launch_signal_{uuid.uuid4().hex}"
    code = "import sys; from nnjax import distributed; "
    code += f"sys.exit(distributed.launch({_sleeper(token)!r}, 2))"
    launcher = subprocess.Popen(
        [sys.executable, "-c", code], env=env(), stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        launched(token, 2, launcher=launcher)
        launcher.send_signal(signum)
        status = launcher.wait(timeout=launcher_module.GRACE_S + 10)
        err = launcher.stderr.read().decode()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    assert status == 128 + signum, err
    assert f"got {signal.Signals(signum).name}; stopping the 2 running process(es)" in err
    assert _gone(token, 5), "a launched process survived the launcher"


def test_a_wrapper_s_children_stop_with_it():
    token = f"nnjax_launch_wrapper_{uuid.uuid4().hex}"
    inner = " ".join(f"'{a}'" for a in _sleeper(token))
    script = f'if [ "$NNJAX_PROCESS_ID" = 1 ]; then exit 5; fi; {inner}; true'
    start = time.monotonic()
    try:
        status = distributed.launch(["sh", "-c", script], 2, timeout_s=60)
        took = time.monotonic() - start
        assert status == 5
        assert took < launcher_module.GRACE_S + 10
        assert _gone(token, 5), "the wrapper's child survived the launch"
    finally:
        _gone(token, 0)


def test_a_signal_while_starting_the_processes_leaves_none_behind(monkeypatch):
    # the signal lands after a child is forked, before Popen returns it to the launcher:
    # the launcher must still know of (and stop) that child and start no fewer
    started = []
    popen = subprocess.Popen

    def starts_then_signalled(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        if len(started) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return started[-1]

    monkeypatch.setattr(launcher_module.subprocess, "Popen", starts_then_signalled)
    previous = signal.getsignal(signal.SIGTERM)
    status = distributed.launch([sys.executable, "-c", "import time; time.sleep(60)"], 3)
    assert status == 128 + signal.SIGTERM
    assert len(started) == 3
    assert all(p.poll() is not None for p in started), "a started process was left running"
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_second_signal_during_the_stop_is_ignored():
    signals = launcher_module._Signals()
    with pytest.raises(launcher_module._Signalled):
        signals.handle(signal.SIGINT, None)
    signals.handle(signal.SIGTERM, None)  # the first one counts; no second raise
    assert signals.caught == signal.SIGINT
