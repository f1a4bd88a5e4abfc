"""Per-array CRC32 checksums: recorded in ``nnjax.json`` at save, verified at load (private).

Orbax and TensorStore store large chunks uncompressed and unchecked, so a flipped bit
on disk would load as a wrong weight. :func:`of_items` records ``zlib.crc32`` of each
host array's bytes (``{"state": {"layers/0/kernel": 1234, ...}, ...}``); arrays sharded
across processes (each process writes only its shards) are not recorded. :func:`verify`
checks every restored host array that has a record; checkpoints written without the
record load as before.

A record's path joins the keys with ``"/"`` after escaping ``"~"`` as ``"~0"`` and
``"/"`` as ``"~1"`` in each key (as JSON Pointer does), so a key ``"a/b"`` and a key
``"b"`` under ``"a"`` get two records (:func:`path`). ``nnjax.json`` says so
(:data:`PATHS` is :data:`ESCAPED`). Files written before that joined the keys plainly:
their records still verify, except those that two arrays share (which of the two the
record holds is unknown), which are skipped. Without ``"~"`` or ``"/"`` in any key the
two forms are the same.

Files written by :func:`nnjax.export` end in a 20-byte record instead (:func:`seal`):
``b"nnjaxCRC"``, the CRC32 and the length of the bytes before it. ``jax.export``'s
reader ignores bytes after its flatbuffer, so plain JAX still loads such a file;
:func:`unseal` checks it, and files without the record (older nnjax, or
``Exported.serialize()`` itself) load unchecked.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

from nnjax.io.errors import CheckpointError

#: The key of the records in ``nnjax.json``.
KEY = "crc32"

#: The record at the end of an exported file: magic, CRC32, length of the bytes before it.
SEAL = struct.Struct("<8sIQ")
MAGIC = b"nnjaxCRC"
_AGAIN = "export the model again (or restore the file from a copy)"


def crc32(array: np.ndarray) -> int:
    """``zlib.crc32`` of ``array``'s bytes in C order (no copy when already contiguous)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return zlib.crc32(flat.view(np.uint8).data) if flat.size else 0


#: The key in ``nnjax.json`` that names how record paths are spelt (absent: plain joins).
PATHS = "crc32_paths"
#: The value of :data:`PATHS` for paths with ``"~"`` and ``"/"`` escaped in each key.
ESCAPED = "escaped"


def path(keys: tuple[str, ...], escaped: bool = True) -> str:
    """The record path of the array at ``keys``: keys joined by ``"/"``, each escaped.

    Without ``escaped``, the plain join of files written before :data:`ESCAPED`.

    Example:
      >>> path(("d", "a/b")), path(("d", "a", "b")), path(("layers", "0", "kernel"))
      ('d/a~1b', 'd/a/b', 'layers/0/kernel')
      >>> path(("d", "a/b"), escaped=False)
      'd/a/b'
    """
    if not escaped:
        return "/".join(keys)
    return "/".join(key.replace("~", "~0").replace("/", "~1") for key in keys)


def _walk(nested: dict, prefix: tuple[str, ...] = ()):
    for key, value in nested.items():
        if isinstance(value, dict):
            yield from _walk(value, (*prefix, str(key)))
        else:
            yield (*prefix, str(key)), value


def of_items(items: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``{item: {"a/b": crc32, ...}}`` of the host (NumPy) arrays of each item (escaped paths).

    Example:
      >>> sorted(of_items({"state": {"a/b": np.zeros(2), "a": {"b": np.ones(2)}}})["state"])
      ['a/b', 'a~1b']
    """
    return {
        name: {
            path(keys): crc32(leaf) for keys, leaf in _walk(tree) if isinstance(leaf, np.ndarray)
        }
        for name, tree in items.items()
        if tree
    }


def records(items: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``nnjax.json`` that record ``items``' checksums (:func:`of_items`)."""
    return {KEY: of_items(items), PATHS: ESCAPED}


def verify(restored: dict, meta: dict[str, Any], item: str, where: str) -> None:
    """Checks the host arrays of ``restored`` (item ``item``) against ``meta``'s records.

    Records of older files (no :data:`PATHS` entry) are looked up by the plain join of
    the keys; a plain path that two arrays share is not checked.

    Raises:
      CheckpointError: ``"<where>: layers/0/kernel fails its CRC32 check ..."`` (the
        array data on disk is damaged).
    """
    recorded = (meta.get(KEY) or {}).get(item) or {}
    if not recorded:
        return
    escaped = meta.get(PATHS) == ESCAPED
    leaves = [(path(keys, escaped), leaf) for keys, leaf in _walk(restored)]
    shared = set() if escaped else _repeated(name for name, _ in leaves)
    for name, leaf in leaves:
        expected = recorded.get(name)
        if expected is None or name in shared or not isinstance(leaf, np.ndarray):
            continue
        actual = crc32(leaf)
        if actual != expected:
            raise CheckpointError(
                f"{where}: {name} fails its CRC32 check (recorded {expected:08x}, read "
                f"{actual:08x}): its array data on disk is damaged"
            )


def _repeated(names: Any) -> set[str]:
    """The names that occur more than once in ``names``."""
    seen: set[str] = set()
    twice: set[str] = set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return twice


def seal(data: bytes) -> bytes:
    """``data`` followed by its record (:data:`SEAL`): what :func:`nnjax.export` writes.

    Example:
      >>> len(seal(b"abc")) - len(b"abc")
      20
    """
    return data + SEAL.pack(MAGIC, zlib.crc32(data), len(data))


def unseal(data: bytes, where: str) -> tuple[bytes, bool]:
    """``(payload, checked)``: ``data`` without its record, checked against it.

    ``checked`` is false for bytes without a record (written before nnjax recorded
    one, or by ``jax.export`` itself): they are returned unchanged.

    Raises:
      CheckpointError: ``"<where>: damaged: fails its CRC32 check ..."``, or the record
        itself is damaged (its length, or its magic off by a few bits).

    Example:
      >>> unseal(seal(b"abc"), "f")
      (b'abc', True)
      >>> unseal(b"abc", "f")
      (b'abc', False)
    """
    if len(data) < SEAL.size:
        return data, False
    magic, expected, length = SEAL.unpack_from(data, len(data) - SEAL.size)
    if magic != MAGIC:
        flipped = int.from_bytes(magic, "little") ^ int.from_bytes(MAGIC, "little")
        if flipped.bit_count() > 8:  # no record: an older file
            return data, False
        raise CheckpointError(f"{where}: damaged: its CRC32 record is garbled; {_AGAIN}")
    payload = data[: -SEAL.size]
    if length != len(payload):
        raise CheckpointError(
            f"{where}: damaged: its CRC32 record is of {length} bytes but {len(payload)} "
            f"precede it; {_AGAIN}"
        )
    actual = zlib.crc32(payload)
    if actual != expected:
        raise CheckpointError(
            f"{where}: damaged: fails its CRC32 check (recorded {expected:08x}, read "
            f"{actual:08x}); {_AGAIN}"
        )
    return payload, True
