"""Global arrays over every process: placing host data, this process's rows, gathering back.

In a multi-process run a :class:`jax.sharding.NamedSharding` spans devices that this
process cannot address, so :func:`jax.device_put` of host data is refused. The
helpers here work in one process and in many alike:

* :func:`put` places host (or device) pytrees with any sharding, each process
  building only its own shards (every process passes the same values);
* :func:`process_rows` says which rows of a ``(B, ...)`` batch this process holds, and
  :func:`put_local` assembles a global batch from each process's rows
  (:func:`jax.make_array_from_process_local_data`);
* :func:`to_host` brings any global array back as NumPy on every process (a collective
  for arrays sharded across processes).

Example:
  >>> import jax, numpy as np
  >>> from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  >>> mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
  >>> x = put(np.arange(4.0), NamedSharding(mesh, P("data")))
  >>> process_rows(NamedSharding(mesh, P("data")), 4), to_host(x).tolist()
  (slice(0, 4, None), [0.0, 1.0, 2.0, 3.0])
"""

from __future__ import annotations

import functools
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Sharding

__all__ = ["is_global", "process_rows", "put", "put_local", "to_host"]


def is_global(sharding: Sharding) -> bool:
    """Whether ``sharding`` spans devices of other processes.

    Example:
      >>> from jax.sharding import SingleDeviceSharding
      >>> is_global(SingleDeviceSharding(jax.devices()[0]))
      False
    """
    return not sharding.is_fully_addressable


def _source(leaf: Any) -> Any:
    """A local copy of ``leaf`` to slice shards from (host data, or one device's array)."""
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
        return leaf
    if leaf.is_fully_replicated:
        return leaf.addressable_shards[0].data
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(leaf, tiled=True)


def _global_input(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and not leaf.is_fully_addressable


def _put_leaf(leaf: Any, sharding: Sharding) -> jax.Array:
    """``leaf`` placed with a sharding that spans other processes, or from a global array."""
    if _global_input(leaf) and leaf.sharding.device_set == sharding.device_set:
        # e.g. parameters restored sharded: each device copies or exchanges its shards
        return jax.device_put(leaf, sharding, may_alias=False)
    src = _source(leaf if isinstance(leaf, jax.Array) else np.asarray(leaf))
    shape = tuple(np.shape(src))
    index = sharding.addressable_devices_indices_map(shape)
    shards = [jax.device_put(src[i], d, may_alias=False) for d, i in index.items()]
    return jax.make_array_from_single_device_arrays(shape, sharding, shards)


def _placed(leaf: Any, sharding: Sharding) -> bool:
    """Whether ``leaf`` is a concrete array already laid out as ``sharding`` says."""
    return (
        isinstance(leaf, jax.Array)
        and not isinstance(leaf, jax.core.Tracer)
        and leaf.sharding.is_equivalent_to(sharding, leaf.ndim)
    )


def _copies(leaves: list, targets: list[Sharding]) -> list[jax.Array]:
    """Unaliased copies of this process's ``leaves``, placed as ``targets`` say.

    One compiled copy of the leaves that one program can take: a ``device_put`` of the
    133 arrays of a 22-layer MLP's Adam state cost the host 6-10 ms, the program 0.4-1.2.
    PRNG keys go through ``device_put`` (a key out of a compiled program's first run
    and one out of its later runs make two entries in the cache of a program taking it).
    """
    devices = targets[0].device_set if targets else set()
    program = [i for i, (a, s) in enumerate(zip(leaves, targets)) if _copyable(a, s, devices)]
    if len(program) < 2:
        return jax.device_put(leaves, targets, may_alias=False)
    out: list[Any] = list(leaves)
    copied = _copier(tuple(targets[i] for i in program))([leaves[i] for i in program])
    for i, a in zip(program, copied):
        out[i] = a
    rest = [i for i in range(len(leaves)) if i not in set(program)]
    for i, a in zip(rest, jax.device_put([leaves[i] for i in rest], [targets[i] for i in rest],
                                         may_alias=False)):  # fmt: skip
        out[i] = a
    return out


def _copyable(leaf: Any, target: Sharding, devices: set) -> bool:
    """Whether a compiled program on ``devices`` copies ``leaf`` to ``target``."""
    if target.device_set != devices:
        return False
    if isinstance(leaf, np.ndarray):
        return leaf.dtype.kind in "biufc"
    return (
        isinstance(leaf, jax.Array)
        and not isinstance(leaf, jax.core.Tracer)
        and not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)
        and (not leaf.committed or leaf.sharding.device_set == devices)
    )


@functools.lru_cache(maxsize=32)
def _copier(targets: tuple[Sharding, ...]) -> Any:
    return jax.jit(lambda leaves: [jnp.copy(a) for a in leaves], out_shardings=list(targets))


def put(tree: Any, sharding: Any, *, copy: bool = True) -> Any:
    """Places every leaf of ``tree`` with ``sharding`` (one, or a matching pytree of them).

    Never aliases the input buffers (donating the result leaves ``tree`` intact), unless
    ``copy=False``: then an array already placed as asked is returned as it is (for
    programs that do not donate: ``predict`` and ``evaluate`` of a model already on its
    devices copy nothing). With several processes every process must pass the same
    values; each builds only the shards of its own devices. PRNG key arrays are placed
    like any other leaf.

    Example:
      >>> from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      >>> mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
      >>> put({"w": np.ones(2)}, NamedSharding(mesh, P()))["w"].shape
      (2,)
    """
    leaves, treedef = jax.tree.flatten(tree)
    if isinstance(sharding, Sharding):
        targets = [sharding] * len(leaves)
    else:  # a pytree of shardings matching ``tree`` (raises ValueError where not)
        targets = cast(Any, treedef).flatten_up_to(sharding)  # (not in jaxlib's stubs)
    kept = [not copy and _placed(a, s) for a, s in zip(leaves, targets)]
    own = [not is_global(s) and not _global_input(a) for a, s in zip(leaves, targets)]
    mine = [(a, s) for a, s, o, k in zip(leaves, targets, own, kept) if o and not k]
    placed = iter(_copies([a for a, _ in mine], [s for _, s in mine]))
    out = [
        a if k else next(placed) if o else _put_leaf(a, s)
        for a, s, o, k in zip(leaves, targets, own, kept)
    ]
    return jax.tree.unflatten(treedef, out)


def process_rows(sharding: Sharding, rows: int) -> slice:
    """The rows of a ``(rows, ...)`` array, sharded by ``sharding``, that this process holds.

    Raises:
      ValueError: the process's rows are not one contiguous block (a device order that
        interleaves processes).

    Example:
      >>> from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      >>> mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
      >>> process_rows(NamedSharding(mesh, P("data")), 6)
      slice(0, 6, None)
    """
    index = sharding.addressable_devices_indices_map((rows,))
    spans = sorted({idx[0].indices(rows)[:2] for idx in index.values() if idx is not None})
    start, stop = spans[0][0], spans[0][1]
    for lo, hi in spans[1:]:
        if lo > stop:
            raise ValueError(
                f"process {jax.process_index()} holds rows {spans} of each batch: not one "
                "contiguous block; order the mesh's devices by process (jax.devices() order)"
            )
        stop = max(stop, hi)
    return slice(start, stop)


def put_local(tree: Any, sharding: Sharding, rows: int) -> Any:
    """A global ``(rows, ...)`` batch from this process's rows (:func:`process_rows`).

    In one process this is :func:`jax.device_put`; with several, each passes its own
    block of rows and :func:`jax.make_array_from_process_local_data` assembles them.
    ``sharding`` splits axis 0 here; for stacked ``(K, B, ...)`` leaves pass the
    sharding of axis 1 and ``rows = B`` (the global shape is the local one with ``B``
    rows on the sharded axis).

    Example:
      >>> from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      >>> mesh = Mesh(np.asarray(jax.devices()[:1]), ("data",))
      >>> put_local(np.ones((4, 2)), NamedSharding(mesh, P("data")), 4).shape
      (4, 2)
    """
    if not is_global(sharding):
        return jax.device_put(tree, sharding)
    axis = _sharded_axis(sharding)

    def one(leaf: Any) -> jax.Array:
        local = np.asarray(leaf)
        shape = (*local.shape[:axis], rows, *local.shape[axis + 1 :])
        return jax.make_array_from_process_local_data(sharding, local, shape)

    return jax.tree.map(one, tree)


def _sharded_axis(sharding: Sharding) -> int:
    spec = getattr(sharding, "spec", ())
    for axis, entry in enumerate(spec):
        if entry is not None:
            return axis
    return 0


def to_host(tree: Any) -> Any:
    """NumPy copies of every leaf, on every process.

    Arrays sharded across processes are gathered (a collective: every process must
    call it with the same tree, in the same order).

    Example:
      >>> to_host({"a": jax.numpy.ones(2)})["a"].tolist()
      [1.0, 1.0]
    """

    def one(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return np.asarray(_source(leaf))
        return leaf

    return jax.device_get(jax.tree.map(one, tree))
