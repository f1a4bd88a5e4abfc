"""Data parallelism: batches sharded over a ``'data'`` mesh axis, state replicated.

Example:
  >>> import jax, numpy as np
  >>> mesh = make_mesh(jax.devices()[:1])
  >>> put_batch((np.ones((2, 4, 3)), np.zeros((2, 4))), mesh)[0].shape
  (2, 4, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def choose_devices(batch_size: int, devices: Sequence[jax.Device] | None = None) -> list:
    """The devices to shard batches over.

    With ``devices=None``: all local devices when ``batch_size`` divides evenly among
    them, else the first one. Given devices must divide ``batch_size``.

    Example:
      >>> len(choose_devices(3, jax.devices()[:1]))
      1
    """
    if devices is None:
        local = jax.local_devices()
        return list(local) if batch_size % len(local) == 0 else [local[0]]
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` is empty")
    if batch_size % len(devices):
        raise ValueError(
            f"batch_size={batch_size} cannot be split evenly over {len(devices)} devices; "
            "pick a multiple of the device count or fewer devices"
        )
    return devices


def make_mesh(devices: Sequence[jax.Device]) -> Mesh:
    """A 1-D mesh over ``devices`` with the axis ``'data'``.

    Example:
      >>> make_mesh(jax.devices()[:1]).axis_names
      ('data',)
    """
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy on every device of ``mesh``.

    Example:
      >>> replicated(make_mesh(jax.devices()[:1])).spec == P()
      True
    """
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 1) -> NamedSharding:
    """Splits axis ``batch_axis`` over ``'data'`` (1 for stacked ``(K, B, ...)`` batches).

    Example:
      >>> batch_sharding(make_mesh(jax.devices()[:1]), 0).spec == P("data")
      True
    """
    return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Copies ``tree`` onto every device of ``mesh``.

    It never aliases the input buffers, so donating the result leaves ``tree`` intact.

    Example:
      >>> put_replicated({"w": np.ones(2)}, make_mesh(jax.devices()[:1]))["w"].shape
      (2,)
    """
    return jax.device_put(tree, replicated(mesh), may_alias=False)


def put_batch(arrays: Any, mesh: Mesh, batch_axis: int = 1) -> Any:
    """Places host arrays on ``mesh``, sharded along ``batch_axis`` (see :func:`batch_sharding`)."""
    return jax.device_put(arrays, batch_sharding(mesh, batch_axis))


__all__ = [
    "DATA_AXIS",
    "batch_sharding",
    "choose_devices",
    "make_mesh",
    "put_batch",
    "put_replicated",
    "replicated",
]
