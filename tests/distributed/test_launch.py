"""nnjax.distributed.launch: N local processes joined by initialize(); failures stop all."""

import json
import os
import sys
import time

import pytest

from nnjax import distributed

WORKER = os.path.join(os.path.dirname(__file__), "_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(distributed.__file__)))
# the workers import nnjax from this checkout, installed or not
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))


def _run(tmp_path, mode, timeout_s=90.0):
    start = time.monotonic()
    status = distributed.launch(
        [sys.executable, WORKER, str(tmp_path), mode], processes=2, timeout_s=timeout_s, env=ENV
    )
    return status, time.monotonic() - start


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_two_processes_all_reduce_across_processes(tmp_path):
    status, _ = _run(tmp_path, "sum")
    assert status == 0
    results = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)]
    for i, r in enumerate(results):
        assert r["process_count"] == 2 and r["index"] == i and r["main"] == (i == 0)
        assert r["devices"] == 4  # 2 processes x 2 local CPU devices
        assert r["sum"] == 2 * 1.0 + 2 * 2.0  # process 0 gives 1s, process 1 gives 2s


@pytest.mark.slow  # measured among the slowest (fresh venv, 2026-12-01); runs in CI's slow step
def test_a_failing_process_stops_the_group_within_a_bound(tmp_path):
    status, seconds = _run(tmp_path, "crash")
    # The crash's status (3), or process 0's when JAX's coordination service saw the peer
    # die and aborted it in the same instant; never success, never the timeout's 124.
    assert status not in (0, 124)
    assert seconds < 60
    assert not (tmp_path / "0.json").exists()


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
