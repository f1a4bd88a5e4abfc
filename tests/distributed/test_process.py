"""nnjax.distributed.initialize: where the arguments come from, and bad ones named."""

import pytest

from nnjax import distributed
from nnjax.distributed import process


def test_explicit_arguments_win():
    env = {distributed.ENV_ADDRESS: "10.0.0.1:9", distributed.ENV_NUM_PROCESSES: "8"}
    assert process._resolve("127.0.0.1:1234", 2, 1, env) == ("127.0.0.1:1234", 2, 1)


def test_launcher_environment_is_read():
    env = {
        distributed.ENV_ADDRESS: "127.0.0.1:1234",
        distributed.ENV_NUM_PROCESSES: "3",
        distributed.ENV_PROCESS_ID: "2",
    }
    assert process._resolve(None, None, None, env) == ("127.0.0.1:1234", 3, 2)


def test_nothing_given_leaves_detection_to_jax():
    assert process._resolve(None, None, None, {}) == (None, None, None)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("127.0.0.1:1234", 2, None), "missing: process_id"),
        ((None, 2, 0), "missing: coordinator_address"),
        (("127.0.0.1", 2, 0), r"`coordinator_address` must be 'host:port', got '127.0.0.1'"),
        (("127.0.0.1:99999", 2, 0), "coordinator_address"),
        (("127.0.0.1:1234", 0, 0), r"`num_processes` must be an int >= 1, got 0"),
        (("127.0.0.1:1234", 2, 2), r"`process_id` must be an int in \[0, 2\), got 2"),
        (("127.0.0.1:1234", 2, True), "process_id"),
    ],
)
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        process._resolve(*args, {})


def test_bad_launcher_environment_is_named():
    env = {distributed.ENV_ADDRESS: "127.0.0.1:1234", distributed.ENV_NUM_PROCESSES: "two"}
    with pytest.raises(ValueError, match="NNJAX_NUM_PROCESSES must be an integer, got 'two'"):
        process._resolve(None, None, None, env)


def test_single_process_defaults():
    assert distributed.process_count() == 1
    assert distributed.process_index() == 0
    assert distributed.is_main_process()


def test_a_busy_coordinator_port_is_named_on_process_0():
    import socket

    with socket.socket() as sock:  # something listens on the port (JAX would segfault)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} .* is in use"):
            distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=0)


@pytest.mark.parametrize(
    "names",
    [("NNJAX_NUM_PROCESSES",), ("NNJAX_PROCESS_ID",), ("NNJAX_NUM_PROCESSES", "NNJAX_PROCESS_ID")],
)
def test_launcher_variables_without_the_address_are_refused(monkeypatch, names):
    monkeypatch.delenv(distributed.ENV_ADDRESS, raising=False)
    for name in names:
        monkeypatch.setenv(name, "1")
    with pytest.raises(ValueError, match=f"{names[0]}.* set but NNJAX_COORDINATOR_ADDRESS"):
        distributed.initialize_if_launched()


def test_a_second_initialize_naming_another_group_is_refused(monkeypatch):
    import jax

    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(process, "_joined", ("127.0.0.1:1234", 2, 1))
    distributed.initialize("127.0.0.1:1234", 2, 1)  # the same group: nothing to do
    distributed.initialize()  # nothing named: nothing to do
    with pytest.raises(ValueError, match=r"num_processes=5 \(joined: 2\), process_id=4"):
        distributed.initialize("127.0.0.1:1234", 5, 4)
    with pytest.raises(ValueError, match=r"coordinator_address='10\.0\.0\.1:9'"):
        distributed.initialize("10.0.0.1:9", 2, 1)


def test_fit_warns_once_when_launched_but_not_joined(monkeypatch):
    import warnings

    import numpy as np
    from flax import nnx

    from nnjax import train
    from nnjax.nn import MLP
    from nnjax.train import agreement

    monkeypatch.setattr(agreement, "_warned", False)
    monkeypatch.setenv(distributed.ENV_ADDRESS, "127.0.0.1:1234")
    monkeypatch.setenv(distributed.ENV_NUM_PROCESSES, "2")
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "1")
    x = np.zeros((8, 2), np.float32)
    y = np.zeros(8, np.int32)
    model = MLP(2, (4,), 2, rngs=nnx.Rngs(0))
    with pytest.warns(RuntimeWarning, match="joined no group: it trains alone") as seen:
        train.fit(model, (x, y), loss="cross_entropy", batch_size=8, verbose=0)
    assert seen[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        train.fit(model, (x, y), loss="cross_entropy", batch_size=8, verbose=0)  # once


def test_the_excepthook_prints_and_chains(monkeypatch, capsys):
    import sys

    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *a: seen.append(a[0]))
    monkeypatch.setattr(process.os, "_exit", lambda code: seen.append(code))
    process._install_excepthook()
    process._install_excepthook()  # once
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert seen == [RuntimeError, 1]
    assert "ends at once (status 1) after an uncaught exception" in capsys.readouterr().err
