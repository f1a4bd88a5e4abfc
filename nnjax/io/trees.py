"""Pytrees to the nested string-keyed dicts that Orbax stores, and back.

A model's state becomes exactly ``nnx.to_pure_dict(nnx.state(model))`` (the form of
Flax's checkpointing guide; list indices as strings, as Orbax stores them), with typed
PRNG keys as their key data (``jax.random.key_data``). Any other pytree (an optimizer
state) is stored the same way, its key path spelt out as nested keys.

Example:
  >>> import jax.numpy as jnp
  >>> to_nested({"w": jnp.ones(2), "k": jax.random.key(0)})["k"].dtype
  dtype('uint32')
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from nnjax.io.errors import CheckpointError

Path = tuple[str, ...]


def is_key(leaf: Any) -> bool:
    """Whether ``leaf`` is an array of typed PRNG keys."""
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _part(entry: Any) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def flatten(tree: Any) -> tuple[list[tuple[Path, Any]], Any]:
    """``([(path, leaf), ...], treedef)``; an ``nnx.Variable``'s ``.value`` adds no key."""
    with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    for keys, leaf in with_path:
        if keys and isinstance(keys[-1], jax.tree_util.GetAttrKey) and keys[-1].name == "value":
            keys = keys[:-1]
        out.append((tuple(_part(k) for k in keys), leaf))
    return out, treedef


def storable(leaf: Any) -> Any:
    """``leaf`` as stored: a host copy, or an array sharded across processes as it is.

    Typed PRNG keys become their key data. An array sharded across processes (not
    fully addressable) stays a ``jax.Array``: Orbax writes it collectively, each
    process its own shards, so nothing is gathered on one host.
    """
    if is_key(leaf):
        leaf = jax.random.key_data(leaf)
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return leaf
    return np.asarray(jax.device_get(leaf))


def spec(leaf: Any) -> tuple[tuple[int, ...], str]:
    """``(shape, dtype)`` of ``leaf`` as stored (key data for PRNG keys)."""
    if is_key(leaf):
        leaf = jax.eval_shape(jax.random.key_data, leaf)
    return tuple(np.shape(leaf)), str(np.dtype(leaf.dtype))


def nest(flat: dict[Path, Any]) -> dict[str, Any]:
    """``{("a", "b"): x}`` -> ``{"a": {"b": x}}``."""
    out: dict[str, Any] = {}
    for path, leaf in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = leaf
    return out


def to_nested(*trees: Any) -> dict[str, Any]:
    """The nested dict that stores ``trees`` (their paths must not overlap).

    Leaves are host copies, except arrays sharded across processes (:func:`storable`).
    """
    flat = {path: storable(leaf) for tree in trees for path, leaf in flatten(tree)[0]}
    return nest(flat)


def check_fits(
    stored: dict[Path, tuple[tuple[int, ...], str]],
    wanted: dict[Path, tuple[tuple[int, ...], str]],
    where: str,
) -> None:
    """Raises a one-line error at the first path (sorted) whose shape or dtype differs or is absent.

    A dtype is never cast on load: a float32 checkpoint in a bfloat16 model would lose
    precision silently, and a float one in an integer variable would change its type.

    Raises:
      CheckpointError: ``"<where>: layers/1/kernel has shape (3, 2) in the checkpoint but
        (3, 4) in the model"``, ``"<where>: layers/0/bias has dtype float32 in the
        checkpoint but bfloat16 in the model"`` (for a 64-bit checkpoint dtype in a
        process without ``jax_enable_x64``, with how to enable it), or a path present on
        one side only.

    Example:
      >>> check_fits({("w",): ((2,), "float32")}, {("w",): ((2,), "bfloat16")}, "ck/state")
      Traceback (most recent call last):
      ...
      nnjax.io.errors.CheckpointError: ck/state: w has dtype float32 in the checkpoint but ...
    """

    def order(path: Path) -> tuple:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path)

    for path in sorted(set(stored) | set(wanted), key=order):
        name = "/".join(path)
        have, want = stored.get(path), wanted.get(path)
        if have is None:
            assert want is not None  # every path comes from one of the two dicts
            raise CheckpointError(
                f"{where}: {name} (shape {want[0]}) is in the model but not in the checkpoint"
            )
        if want is None:
            raise CheckpointError(
                f"{where}: {name} (shape {have[0]}) is in the checkpoint but not in the model"
            )
        if tuple(have[0]) != tuple(want[0]):
            raise CheckpointError(
                f"{where}: {name} has shape {have[0]} in the checkpoint but {want[0]} in the model"
            )
        if have[1] and want[1] and str(have[1]) != str(want[1]):
            raise CheckpointError(
                f"{where}: {name} has dtype {have[1]} in the checkpoint but {want[1]} in the "
                f"model{_x64_hint(str(have[1]))}"
            )


def _x64_hint(stored_dtype: str) -> str:
    """Where a 64-bit checkpoint meets a process without x64: how to load it.

    Example:
      >>> _x64_hint("float32")
      ''
    """
    x64 = jax.dtypes.canonicalize_dtype(np.float64) == np.float64
    if x64 or not stored_dtype.endswith("64") or "complex64" in stored_dtype:
        return ""
    return (
        "; enable jax_enable_x64 (jax.config.update('jax_enable_x64', True)) before "
        "building/loading a float64 model"
    )


def placement(leaf: Any) -> Any:
    """The sharding to restore ``leaf`` with, or ``None`` to restore a host array.

    A ``jax.ShapeDtypeStruct`` with a sharding asks for it; a ``jax.Array`` sharded
    across processes keeps its own; anything else is read to the host.
    """
    sharding = getattr(leaf, "sharding", None)
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return sharding
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return sharding
    return None


def target(tree: Any) -> dict[str, Any]:
    """The restore target for Orbax: host arrays, or abstract arrays with a sharding.

    Leaves with a :func:`placement` become ``jax.ShapeDtypeStruct``s carrying it (the
    key data of PRNG keys sharded as the keys), so each process reads only its shards
    of them; the others are zero host arrays of the stored shape and dtype.
    """

    def one(leaf: Any) -> Any:
        shape, dtype = spec(leaf)
        sharding = placement(leaf)
        if sharding is None:
            return np.zeros(shape, dtype)
        return jax.ShapeDtypeStruct(shape, np.dtype(dtype), sharding=sharding)

    return nest({path: one(leaf) for path, leaf in flatten(tree)[0]})


def fill(tree: Any, restored: dict[str, Any]) -> Any:
    """``tree`` with its leaves taken from ``restored`` (a nested dict), keys re-typed.

    Restored ``jax.Array``s stay on their devices; other leaves become NumPy arrays.
    """
    pairs, treedef = flatten(tree)
    leaves = []
    for path, leaf in pairs:
        value: Any = restored
        for key in path:
            value = value[key]
        if not isinstance(value, jax.Array):
            value = np.asarray(value)
        if is_key(leaf):
            value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf))
        leaves.append(value)
    return jax.tree.unflatten(treedef, leaves)


def wanted(*trees: Any) -> dict[Path, tuple[tuple[int, ...], str]]:
    """``{path: (shape, dtype)}`` of ``trees`` as stored."""
    return {path: spec(leaf) for tree in trees for path, leaf in flatten(tree)[0]}


__all__ = [
    "CheckpointError",
    "check_fits",
    "fill",
    "flatten",
    "is_key",
    "placement",
    "target",
    "to_nested",
]
