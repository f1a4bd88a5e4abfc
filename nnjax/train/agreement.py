"""Whether every process of a multi-process ``fit`` was given the same run (private).

Every process of a multi-process run must call ``fit`` with the same settings: a
different number of examples, batch size, batch dtype, epoch count, ``steps_per_epoch``
or checkpoint callback makes the processes run different sequences of collectives, and
they wait for each other forever; a different seed, learning rate, optimizer or initial
parameters trains each replica differently without an error. So ``fit`` first exchanges
a small description of its run (:func:`check`) through the key-value store of JAX's
coordination service (the one :func:`jax.distributed.initialize` starts), with a bounded
wait, and raises a ``ValueError`` naming each setting that differs and each process's
value, on every process, before anything compiles.

Each ``fit`` call publishes one key per process under :data:`ROOT` (numbered by a
counter that every process advances alike); every process deletes its own key once
every process has read every key (a barrier, bounded like the reads).

Example:
  >>> check({"epochs": 2, "seed": 0})  # one process: nothing to compare
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from nnjax._deprecation import user_stacklevel

WAIT_S = 300
"""The longest one process waits for the others to reach ``fit``, in seconds.

The processes usually arrive within seconds of each other; a process that loads its
data much longer than this before ``fit`` should load it before a collective step.
"""

RTOL = 1e-5
"""Parameter fingerprints closer than this (relative) count as equal.

The same seed gives bitwise-equal parameters on one kind of machine, and a different
seed differs by O(1); the tolerance leaves room for last-bit differences between host
CPUs.
"""

ROOT = "nnjax_fit_agreement"
"""The directory of the coordination service's key-value store that holds the keys."""

_calls = itertools.count()
_warned = False


def _client() -> Any:
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise RuntimeError("several JAX processes but no jax.distributed client")
    return client


def fingerprint(params: Any) -> list[float]:
    """Two numbers per leaf of ``params`` (its sum, a position-weighted sum), float64.

    A leaf laid out across processes and not replicated (FSDP) counts by its shape
    only: each process holds other values of it.
    """
    out: list[float] = []
    for leaf in jax.tree.leaves(params):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if not leaf.sharding.is_fully_replicated:
                out += [float(np.prod(leaf.shape)), 0.0]
                continue
            leaf = leaf.addressable_shards[0].data
        a = np.asarray(leaf, dtype=np.float64).ravel()
        weights = 1.0 + (np.arange(a.size) % 7)
        out += [float(a.sum()), float(a @ weights)]
    return out


def describe_optimizer(optimizer: Any) -> str:
    """A description of ``fit``'s ``optimizer`` that is the same in every process."""
    if isinstance(optimizer, str):
        return optimizer
    target = getattr(optimizer, "update", optimizer)  # an Optax transformation's
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"


def checksum(value: Any) -> str:
    """A short, stable digest of a JSON-able ``value``."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def warn_if_not_joined() -> None:
    """Warns once when ``nnjax launch`` started this process but it joined no group."""
    global _warned
    from nnjax.distributed.process import ENV_ADDRESS, ENV_NUM_PROCESSES

    if _warned or ENV_ADDRESS not in os.environ or jax.distributed.is_initialized():
        return
    if os.environ.get(ENV_NUM_PROCESSES, "1").strip() in ("", "1"):
        return
    _warned = True
    warnings.warn(
        f"{ENV_ADDRESS} is set (`nnjax launch` started this process) but the process "
        "joined no group: it trains alone. Call nnjax.distributed.initialize() (or "
        "initialize_if_launched()) first, before any other JAX work",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )


def check_fit(
    *,
    source: Any,
    val: Any,
    params: Any,
    optimizer: Any,
    learning_rate: float | None,
    callbacks: Sequence[Any],
    **settings: Any,
) -> None:
    """:func:`check` of what ``fit`` was given (``settings``: its plain arguments)."""
    if jax.process_count() == 1:
        return
    from nnjax.train.checkpoint import ModelCheckpoint
    from nnjax.train.feeder import batch_nbytes

    fields = {
        "number of examples": getattr(source, "n", None),
        "batch_size": getattr(source, "batch_size", None),
        # this process's rows of a batch: their shapes and dtypes, and the batches a
        # dispatch stacks (feeder.default_steps), must be every process's
        "bytes per batch": batch_nbytes(source),
        "steps per epoch": getattr(source, "steps", None),
        **{k: v if v is None or isinstance(v, (bool, int, float, str)) else repr(v)
           for k, v in settings.items()},
        "learning_rate": learning_rate,
        "optimizer": describe_optimizer(optimizer),
        "validation data": None if val is None else f"{getattr(val, 'steps', '?')} batches",
        "ModelCheckpoint directories": [
            c.directory for c in callbacks if isinstance(c, ModelCheckpoint)
        ],
        "parameter shapes": checksum([list(np.shape(a)) for a in jax.tree.leaves(params)]),
        "parameters": fingerprint(params),
    }  # fmt: skip
    check(fields)


def check(fields: Mapping[str, Any], *, close: Sequence[str] = ("parameters",)) -> None:
    """Raises unless every process gives the same ``fields`` (JSON-able values).

    ``close`` names fields (lists of floats) compared up to :data:`RTOL`.

    Raises:
      ValueError: some fields differ: each one named, with every process's value.
      TimeoutError: a process did not reach this check within :data:`WAIT_S` seconds
        (naming it).
    """
    count = jax.process_count()
    if count == 1:
        return
    client, me = _client(), jax.process_index()
    tag = f"{ROOT}/{next(_calls)}"
    mine = json.dumps(dict(fields), sort_keys=True)
    client.key_value_set(f"{tag}/{me}", mine)
    reports: dict[int, dict[str, Any]] = {me: json.loads(mine)}
    missing = []
    for i in range(count):
        if i == me:
            continue
        try:
            reports[i] = json.loads(client.blocking_key_value_get(f"{tag}/{i}", WAIT_S * 1000))
        except Exception:  # the client raises its runtime's error type
            missing.append(i)
    if missing:
        raise TimeoutError(
            f"fit (process {me}): process(es) {', '.join(map(str, missing))} of {count} did "
            f"not reach fit within {WAIT_S} s: every process must call fit with the same "
            "settings (the others may have failed, or run other code first)"
        )
    try:  # every key read by every process: each deletes its own
        client.wait_at_barrier(f"{tag}/read", WAIT_S * 1000)
        client.key_value_delete(f"{tag}/{me}")
    except Exception:  # a key left behind is small; the comparison below still holds
        pass
    differ = [
        name
        for name in fields
        if not _same([reports[i].get(name) for i in range(count)], name in close)
    ]
    if differ:
        lines = [
            f"  {name}: "
            + "; ".join(f"process {i}: {_show(reports[i].get(name))}" for i in range(count))
            for name in differ
        ]
        raise ValueError(
            f"fit: the {count} processes were given different runs (each must call fit "
            "with the same data, settings, callbacks and initial model):\n" + "\n".join(lines)
        )


def _same(values: list[Any], close: bool) -> bool:
    first = values[0]
    if not close:
        return all(v == first for v in values)
    try:
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        return all(
            a.shape == arrays[0].shape and np.allclose(a, arrays[0], rtol=RTOL, atol=RTOL)
            for a in arrays
        )
    except (TypeError, ValueError):
        return all(v == first for v in values)


def _show(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4 and all(isinstance(v, float) for v in value):
        return f"checksum {checksum(value)} (sum {sum(value[::2]):.6g})"
    return repr(value)


__all__ = ["ROOT", "RTOL", "WAIT_S", "check", "check_fit", "describe_optimizer", "fingerprint"]
