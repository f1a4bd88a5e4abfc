"""Joining JAX's multi-controller runtime: one call per process, before any computation.

:func:`initialize` wraps :func:`jax.distributed.initialize`. It takes the coordinator's
address, the process count and this process's index explicitly; or reads them from the
environment that ``nnjax launch`` (and :func:`nnjax.distributed.launch`) sets; or lets
JAX detect the cluster (SLURM, Cloud TPU, Open MPI, ...). On the CPU it selects JAX's
gloo collectives, so cross-process all-reduces work on a laptop or a CI machine.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import traceback
from collections.abc import Mapping, Sequence
from types import TracebackType

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

#: ``initialize``'s wait for every process to join, in seconds (JAX's own default).
#: :func:`initialize_if_launched` (processes of one machine) waits :data:`LAUNCHED_TIMEOUT_S`.
TIMEOUT_S = 300
#: :func:`initialize_if_launched`'s wait for every process to join: local processes
#: start within seconds; a peer that never starts then fails the group in a minute.
LAUNCHED_TIMEOUT_S = 60
#: How long a process that has finished waits at exit for the others to finish too
#: (JAX's shutdown barrier; JAX's default is 300 s). When it runs out, JAX aborts every
#: process of the group, so a process may do at most this much work of its own (no
#: collectives) after the others have exited.
SHUTDOWN_TIMEOUT_S = 60

# (address, count, index) of the group this process joined through `initialize`
_joined: tuple[str | None, int, int] | None = None

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
    timeout_s: int = TIMEOUT_S,
    heartbeat_timeout_s: int = 100,
    shutdown_timeout_s: int = SHUTDOWN_TIMEOUT_S,
) -> None:
    """Joins this process to a multi-process JAX run (call it once, before any JAX work).

    Where the three arguments come from, in order: the arguments; the variables that
    ``nnjax launch`` sets (:data:`ENV_ADDRESS`, :data:`ENV_NUM_PROCESSES`,
    :data:`ENV_PROCESS_ID`); JAX's own cluster detection (SLURM, Cloud TPU, Open MPI,
    Kubernetes). A second call in the same process does nothing, unless it names another
    group (a different address, count or index): that raises ``ValueError``.

    In a group of several processes it installs a ``sys.excepthook`` (chaining the
    previous one) that prints an uncaught exception's traceback and ends the process at
    once with status 1 (``os._exit``, skipping JAX's shutdown barrier): the others then
    fail in their next collective ("Connection closed by peer") or by the heartbeat
    check, and ``nnjax launch`` stops them, instead of the whole group hanging.

    With none of the three (a plain ``python train.py`` on a laptop) there is nothing
    to join and it raises ``ValueError``: a script that should also run as a single
    process calls :func:`initialize_if_launched` instead, which does nothing then.

    Args:
      coordinator_address: ``"host:port"`` of process 0's coordinator service.
      num_processes: how many processes take part, ``>= 1``.
      process_id: this process's index in ``[0, num_processes)``.
      local_device_ids: restricts this process to some of its local devices.
      timeout_s: how long to wait for every process to join before failing (JAX then
        aborts the process: ``DEADLINE_EXCEEDED ... RegisterTask``, a C++ abort).
      heartbeat_timeout_s: how long a silent process may go before the others fail
        (a killed process then stops the run instead of hanging it).
      shutdown_timeout_s: how long a finished process waits at exit for the others
        (:data:`SHUTDOWN_TIMEOUT_S`); past it JAX aborts every process of the group.

    Raises:
      ValueError: a malformed address, a count or index out of range, or only some of
        the three arguments given (naming what was passed); or no arguments, no
        launcher variables and no cluster that JAX detects (naming the three sources);
        a second call naming another group than the one joined.
      OSError: on process 0, the coordinator's port is in use (JAX would crash).

    Example:
      >>> # in each of 2 processes (or: nnjax launch --processes 2 -- python train.py)
      >>> # nnjax.distributed.initialize("127.0.0.1:1234", num_processes=2, process_id=i)
      >>> process_count(), process_index(), is_main_process()
      (1, 0, True)
    """
    address, count, index = _resolve(coordinator_address, num_processes, process_id, os.environ)
    if jax.distributed.is_initialized():
        _check_same_group(address, count, index)
        return
    if index == 0 and address is not None:
        _check_port_free(address)
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
            shutdown_timeout_seconds=shutdown_timeout_s,
        )
    except ValueError as error:
        # JAX's own words when its cluster detection found nothing:
        # "coordinator_address should be defined."
        if address is not None or "coordinator_address" not in str(error):
            raise
        raise ValueError(_NOTHING_TO_JOIN) from error
    from jax._src import distributed as jax_distributed

    state = jax_distributed.global_state
    global _joined
    _joined = (address, state.num_processes, state.process_id)
    if state.num_processes > 1:
        _install_excepthook()


def _check_same_group(address: str | None, count: int | None, index: int | None) -> None:
    """Raises when a second ``initialize`` names another group than the one joined."""
    from jax._src import distributed as jax_distributed

    state = jax_distributed.global_state
    joined = _joined or (state.coordinator_address, state.num_processes, state.process_id)
    asked = (address, count, index)
    names = ("coordinator_address", "num_processes", "process_id")
    differ = [
        f"{name}={a!r} (joined: {j!r})"
        for name, a, j in zip(names, asked, joined)
        if a is not None and j is not None and a != j
    ]
    if differ:
        raise ValueError(
            "initialize: this process already joined a group; a second call cannot join "
            f"another one: {', '.join(differ)}"
        )


def _check_port_free(address: str) -> None:
    """Raises when ``address``'s port is in use here (this is process 0).

    Process 0 runs the coordinator on that port, on every interface; a port in use
    makes JAX crash the process (a segfault), so say so first.
    """
    port = int(address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds it
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                return  # not ours to judge (e.g. no IPv4): JAX binds it and says
            raise OSError(
                errno.EADDRINUSE,
                f"initialize: process 0 runs the coordinator on port {port} "
                f"({address!r}), and that port is in use: pick a free port "
                "(nnjax.distributed.free_port()) or stop what listens on it",
            ) from None


def _install_excepthook() -> None:
    """An uncaught exception ends this process at once (see :func:`initialize`)."""
    if getattr(sys.excepthook, "_nnjax_exits", False):
        return
    previous = sys.excepthook

    def exit_now(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        try:
            previous(kind, value, tb)
        except Exception:  # a broken hook must not keep the group waiting
            traceback.print_exception(kind, value, tb)
        print(
            f"nnjax.distributed: process {_joined[2] if _joined else '?'} ends at once "
            "(status 1) after an uncaught exception, so the other processes stop too",
            file=sys.stderr,
        )
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(1)

    exit_now._nnjax_exits = True  # type: ignore[attr-defined]
    sys.excepthook = exit_now


_NOTHING_TO_JOIN = (
    "initialize: no multi-process run to join: no arguments were given, "
    f"{ENV_ADDRESS} is not set (the process was not started by `nnjax launch`), and JAX "
    "detected no cluster (SLURM, Cloud TPU, Open MPI, Kubernetes). Pass "
    "coordinator_address, num_processes and process_id; or start the script with "
    "`nnjax launch --processes N -- python script.py`; or, in a script that also runs "
    "as one process, call initialize_if_launched() instead"
)


def initialize_if_launched(
    *,
    timeout_s: int = LAUNCHED_TIMEOUT_S,
    heartbeat_timeout_s: int = 100,
    shutdown_timeout_s: int = SHUTDOWN_TIMEOUT_S,
) -> bool:
    """Joins the group when ``nnjax launch`` started this process; returns whether it did.

    A script (or the ``nnjax train`` command) that may run alone or under ``nnjax launch
    --processes N`` calls this first: with the launcher's variables set (:data:`ENV_ADDRESS`
    and the others) it calls :func:`initialize`; without them it does nothing (so a lone
    run never waits for a cluster).

    Args:
      timeout_s: as :func:`initialize` (:data:`LAUNCHED_TIMEOUT_S` here: the launched
        processes run on one machine).
      heartbeat_timeout_s: as :func:`initialize`.
      shutdown_timeout_s: as :func:`initialize`.

    Returns:
      ``True`` when it joined the launcher's group, ``False`` when the launcher's
      variables are not set (nothing was done).

    Raises:
      ValueError: :data:`ENV_NUM_PROCESSES` or :data:`ENV_PROCESS_ID` is set but
        :data:`ENV_ADDRESS` is not (a launcher that set only part of them); as
        :func:`initialize`.

    Example:
      >>> initialize_if_launched()  # not started by nnjax launch
      False
    """
    if ENV_ADDRESS not in os.environ:
        partial = [name for name in (ENV_NUM_PROCESSES, ENV_PROCESS_ID) if name in os.environ]
        if partial:
            raise ValueError(
                f"initialize_if_launched: {' and '.join(partial)} set but {ENV_ADDRESS} "
                "is not: set all three (as `nnjax launch` does) or none"
            )
        return False
    initialize(
        timeout_s=timeout_s,
        heartbeat_timeout_s=heartbeat_timeout_s,
        shutdown_timeout_s=shutdown_timeout_s,
    )
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
