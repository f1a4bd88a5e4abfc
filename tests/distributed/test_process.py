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
