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


def _running(token):
    """The pids of the processes whose command line holds ``token``."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        pids.append(int(name))
            except OSError:
                pass
    return pids


def _gone(token, timeout_s):
    """Whether every process holding ``token`` has ended within ``timeout_s`` (else kill)."""
    end = time.monotonic() + timeout_s
    while _running(token) and time.monotonic() < end:
        time.sleep(0.1)
    left = _running(token)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return not left


def _sleeper(token):
    return [sys.executable, "-c", f"import time; time.sleep(60)  # {token}"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_every_process(signum):
    token = f"nnjax_launch_signal_{uuid.uuid4().hex}"
    code = "import sys; from nnjax import distributed; "
    code += f"sys.exit(distributed.launch({_sleeper(token)!r}, 2))"
    launcher = subprocess.Popen(
        [sys.executable, "-c", code], env=env(), stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        end = time.monotonic() + 30
        children = lambda: set(_running(token)) - {launcher.pid}
        while len(children()) < 2 and time.monotonic() < end:
            time.sleep(0.1)
        assert len(children()) == 2, "the launched processes did not start"
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
