"""nnjax.distributed.launch: N local processes; a timeout stops them all; bad arguments.

The launched JAX group itself is checked by the ``allreduce`` scenario of the 2-process
group (``test_two_process_fit.py``), a failing process by ``test_cli_resume.py``.
"""

import sys
import time

import pytest

from nnjax import distributed


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
