"""Joining JAX's multi-controller runtime: one call per process, before any computation.

:func:`initialize` wraps :func:`jax.distributed.initialize`. It takes the coordinator's
address, the process count and this process's index explicitly; or reads them from the
environment that ``nnjax launch`` (and :func:`nnjax.distributed.launch`) sets; or lets
JAX detect the cluster (SLURM, Cloud TPU, Open MPI, ...). On the CPU it selects JAX's
gloo collectives, so cross-process all-reduces work on a laptop or a CI machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import jax

__all__ = [
    "ENV_ADDRESS",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "initialize",
    "initialize_if_launched",
    "is_main_process",
    "process_count",
    "process_index",
]

ENV_ADDRESS = "NNJAX_COORDINATOR_ADDRESS"
"""Set by ``nnjax launch`` in each process it starts: the coordinator's ``"host:port"``."""
ENV_NUM_PROCESSES = "NNJAX_NUM_PROCESSES"
"""Set by ``nnjax launch`` in each process it starts: the number of processes."""
ENV_PROCESS_ID = "NNJAX_PROCESS_ID"
"""Set by ``nnjax launch`` in each process it starts: this process's index (0 first)."""


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: int | Sequence[int] | None = None,
    timeout_s: int = 300,
    heartbeat_timeout_s: int = 100,
) -> None:
    """Joins this process to a multi-process JAX run (call it once, before any JAX work).

    Where the three arguments come from, in order: the arguments; the variables that
    ``nnjax launch`` sets (:data:`ENV_ADDRESS`, :data:`ENV_NUM_PROCESSES`,
    :data:`ENV_PROCESS_ID`); JAX's own cluster detection (SLURM, Cloud TPU, Open MPI,
    Kubernetes). A second call in the same process does nothing.

    With none of the three (a plain ``python train.py`` on a laptop) there is nothing
    to join and it raises ``ValueError``: a script that should also run as a single
    process calls :func:`initialize_if_launched` instead, which does nothing then.

    Args:
      coordinator_address: ``"host:port"`` of process 0's coordinator service.
      num_processes: how many processes take part, ``>= 1``.
      process_id: this process's index in ``[0, num_processes)``.
      local_device_ids: restricts this process to some of its local devices.
      timeout_s: how long to wait for every process to join before failing.
      heartbeat_timeout_s: how long a silent process may go before the others fail
        (a killed process then stops the run instead of hanging it).

    Raises:
      ValueError: a malformed address, a count or index out of range, or only some of
        the three arguments given (naming what was passed); or no arguments, no
        launcher variables and no cluster that JAX detects (naming the three sources).

    Example:
      >>> # in each of 2 processes (or: nnjax launch --processes 2 -- python train.py)
      >>> # nnjax.distributed.initialize("127.0.0.1:1234", num_processes=2, process_id=i)
      >>> process_count(), process_index(), is_main_process()
      (1, 0, True)
    """
    if jax.distributed.is_initialized():
        return
    address, count, index = _resolve(coordinator_address, num_processes, process_id, os.environ)
    # A config property jax adds at runtime (undeclared for type checkers); `read` refuses it.
    collectives = jax.config.jax_cpu_collectives_implementation  # type: ignore[attr-defined]
    if collectives in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=count,
            process_id=index,
            local_device_ids=local_device_ids,
            initialization_timeout=timeout_s,
            heartbeat_timeout_seconds=heartbeat_timeout_s,
        )
    except ValueError as error:
        # JAX's own words when its cluster detection found nothing:
        # "coordinator_address should be defined."
        if address is not None or "coordinator_address" not in str(error):
            raise
        raise ValueError(_NOTHING_TO_JOIN) from error


_NOTHING_TO_JOIN = (
    "initialize: no multi-process run to join: no arguments were given, "
    f"{ENV_ADDRESS} is not set (the process was not started by `nnjax launch`), and JAX "
    "detected no cluster (SLURM, Cloud TPU, Open MPI, Kubernetes). Pass "
    "coordinator_address, num_processes and process_id; or start the script with "
    "`nnjax launch --processes N -- python script.py`; or, in a script that also runs "
    "as one process, call initialize_if_launched() instead"
)


def initialize_if_launched(*, timeout_s: int = 300, heartbeat_timeout_s: int = 100) -> bool:
    """Joins the group when ``nnjax launch`` started this process; returns whether it did.

    A script (or the ``nnjax train`` command) that may run alone or under ``nnjax launch
    --processes N`` calls this first: with the launcher's variables set (:data:`ENV_ADDRESS`
    and the others) it calls :func:`initialize`; without them it does nothing (so a lone
    run never waits for a cluster).

    Args:
      timeout_s: as :func:`initialize`.
      heartbeat_timeout_s: as :func:`initialize`.

    Returns:
      ``True`` when it joined the launcher's group, ``False`` when the launcher's
      variables are not set (nothing was done).

    Example:
      >>> initialize_if_launched()  # not started by nnjax launch
      False
    """
    if ENV_ADDRESS not in os.environ:
        return False
    initialize(timeout_s=timeout_s, heartbeat_timeout_s=heartbeat_timeout_s)
    return True


def _resolve(
    address: str | None, count: int | None, index: int | None, env: Mapping[str, str]
) -> tuple[str | None, int | None, int | None]:
    """The explicit arguments, else the launcher's variables, else ``None`` (JAX detects)."""
    given = {"coordinator_address": address, "num_processes": count, "process_id": index}
    if all(v is None for v in given.values()) and ENV_ADDRESS in env:
        address = env[ENV_ADDRESS]
        count = _env_int(env, ENV_NUM_PROCESSES)
        index = _env_int(env, ENV_PROCESS_ID)
    elif any(v is None for v in given.values()) and any(v is not None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        raise ValueError(
            f"initialize: pass all of coordinator_address, num_processes and "
            f"process_id, or none (to auto-detect); missing: {', '.join(missing)}"
        )
    if address is None:
        return None, None, None
    _check_address(address)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"initialize: `num_processes` must be an int >= 1, got {count!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"initialize: `process_id` must be an int in [0, {count}), got {index!r}")
    return address, count, index


def _env_int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except (KeyError, ValueError):
        raise ValueError(
            f"initialize: {ENV_ADDRESS} is set, so {name} must be an integer, got {env.get(name)!r}"
        ) from None


def _check_address(address: str) -> None:
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"initialize: `coordinator_address` must be 'host:port', got {address!r}")


def process_count() -> int:
    """The number of processes in the run (1 without :func:`initialize`).

    Returns:
      ``jax.process_count()``: the processes that joined, ``>= 1``.

    Example:
      >>> process_count()  # a single process
      1
    """
    return jax.process_count()


def process_index() -> int:
    """The index of this process, from 0 to ``process_count() - 1``.

    Returns:
      ``jax.process_index()`` (0 in a single process).

    Example:
      >>> process_index()
      0
    """
    return jax.process_index()


def is_main_process() -> bool:
    """Whether this is process 0: the one that prints progress and writes logs.

    Returns:
      ``True`` on process 0 (and in a single process), ``False`` on every other.

    Example:
      >>> is_main_process()
      True
    """
    return jax.process_index() == 0
