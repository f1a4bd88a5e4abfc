"""Agreement between JAX processes on a collective checkpoint write (private).

With several processes every process calls :func:`nnjax.io.layout.write` for the same
folder, in the same order. One step runs on process 0 alone (:func:`on_main`: create
the temporary folder, commit it) or on every process (:func:`everywhere`: Orbax writes
each process's shards); after each, the processes exchange their outcomes through the
key-value store of JAX's coordination service (the one ``jax.distributed.initialize``
starts), so either every process returns or every process raises the same error.
Every wait is bounded by :data:`WAIT_S`.

Every key lives under :data:`ROOT` (``nnjax_checkpoint/<write>/<step>``). A process
deletes the keys it published once every process has read them: at the end of each
:func:`everywhere` exchange, since no process reports there before it has read every
earlier key. So the store holds the keys of at most the latest write or two, however
many checkpoints a run writes.

Example:
  >>> on_main("nnjax_checkpoint_doc/prepare", lambda: "ready")  # one process: just runs it
  'ready'
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
from collections.abc import Callable
from typing import Any

import jax

WAIT_S = 330
"""The longest one process waits for another's outcome, in seconds.

Just longer than Orbax's own barrier timeout (300 s), so a process stuck there reports
first (with Orbax's message) rather than this wait; no longer than that, because a
process that never comes (it took another path) is all that remains to wait for: a dead
one is caught by JAX's heartbeat check, a mismatched ``ModelCheckpoint`` by ``fit``'s
check of its settings across processes (:mod:`nnjax.train.agreement`) before training.
"""

ROOT = "nnjax_checkpoint"
"""The directory of the coordination service's key-value store that holds every key."""

_writes = itertools.count()
_published: list[str] = []  # this process's keys that are still in the store


def next_tag() -> str:
    """A name for the next collective write: the same on every process (they count alike)."""
    return f"{ROOT}/{next(_writes)}"


def _client() -> Any:
    # JAX keeps its coordination client here (Orbax reads it the same way).
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("several JAX processes but no jax.distributed client")
    return client


def _outcome(err: BaseException | None, value: Any = None) -> str:
    if err is None:
        return json.dumps({"ok": True, "value": value})
    code = err.errno if isinstance(err, OSError) and err.errno else errno.EIO
    kind = "exists" if isinstance(err, FileExistsError) else "os"
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip()
    message = f"process {jax.process_index()}: {text or type(err).__name__}"
    return json.dumps({"ok": False, "kind": kind, "errno": code, "message": message})


def _publish(key: str, err: BaseException | None, value: Any = None) -> None:
    _client().key_value_set(key, _outcome(err, value))
    _published.append(key)


def _delete(keys: list[str]) -> None:
    """Deletes ``keys`` (this process's, read by every process) from the store."""
    client = _client()
    for key in keys:
        _published.remove(key)
        # a failed delete leaves one small key behind; the write itself has succeeded
        with contextlib.suppress(Exception):
            client.key_value_delete(key)


def _read(key: str, what: str) -> dict[str, Any]:
    try:
        text = _client().blocking_key_value_get(key, WAIT_S * 1000)
    except Exception as err:  # the client raises its runtime's error type
        raise OSError(
            errno.ETIMEDOUT,
            f"checkpoint write: {what} did not report within {WAIT_S} s ({str(err)[:160]})",
        ) from None
    return json.loads(text)


def _raise(report: dict[str, Any]) -> None:
    if report["kind"] == "exists":
        raise FileExistsError(report["message"])
    raise OSError(report["errno"], report["message"])


def on_main(key: str, step: Callable[[], Any]) -> Any:
    """``step()`` on process 0; every process returns its (JSON) result or raises its error.

    Raises:
      FileExistsError, OSError: what ``step`` raised on process 0 (the original there,
        the same kind and message elsewhere); an ``OSError`` when process 0 does not
        report within :data:`WAIT_S` seconds.
    """
    if jax.process_count() == 1:
        return step()
    if jax.process_index() == 0:
        try:
            value = step()
        except BaseException as err:
            _publish(key, err)
            raise
        _publish(key, None, value)
        return value
    report = _read(key, "process 0")
    if not report["ok"]:
        _raise(report)
    return report["value"]


def everywhere(key: str, step: Callable[[], None]) -> None:
    """``step()`` on every process, then waits until every process has reported.

    Raises:
      OSError (or what ``step`` raised here): ``step`` failed on some process (the
        first failing process's message), or a process did not report within
        :data:`WAIT_S` seconds.
    """
    if jax.process_count() == 1:
        step()
        return
    mine: BaseException | None = None
    try:
        step()
    except Exception as err:
        mine = err
    earlier = list(_published)
    _publish(f"{key}/{jax.process_index()}", mine)
    try:  # wait for everyone even after a failure here, so all leave together
        reports = [_read(f"{key}/{i}", f"process {i}") for i in range(jax.process_count())]
    except OSError:
        if mine is None:
            raise
        reports = []
    else:  # every process has reported, so each has read every earlier key
        _delete(earlier)
    if mine is not None:
        raise mine
    for report in reports:
        if not report["ok"]:
            _raise(report)


__all__ = ["ROOT", "WAIT_S", "everywhere", "next_tag", "on_main"]
