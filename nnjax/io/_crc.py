"""Per-array CRC32 checksums: recorded in ``nnjax.json`` at save, verified at load (private).

Orbax and TensorStore store large chunks uncompressed and unchecked, so a flipped bit
on disk would load as a wrong weight. :func:`of_items` records ``zlib.crc32`` of each
host array's bytes (``{"state": {"layers/0/kernel": 1234, ...}, ...}``); arrays sharded
across processes (each process writes only its shards) are not recorded. :func:`verify`
checks every restored host array that has a record; checkpoints written without the
record load as before.

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


def _walk(nested: dict, prefix: tuple[str, ...] = ()):
    for key, value in nested.items():
        if isinstance(value, dict):
            yield from _walk(value, (*prefix, str(key)))
        else:
            yield "/".join((*prefix, str(key))), value


def of_items(items: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``{item: {"a/b": crc32, ...}}`` of the host (NumPy) arrays of each item."""
    return {
        name: {path: crc32(leaf) for path, leaf in _walk(tree) if isinstance(leaf, np.ndarray)}
        for name, tree in items.items()
        if tree
    }


def verify(restored: dict, meta: dict[str, Any], item: str, where: str) -> None:
    """Checks the host arrays of ``restored`` (item ``item``) against ``meta``'s records.

    Raises:
      CheckpointError: ``"<where>: layers/0/kernel fails its CRC32 check ..."`` (the
        array data on disk is damaged).
    """
    records = (meta.get(KEY) or {}).get(item) or {}
    if not records:
        return
    for path, leaf in _walk(restored):
        expected = records.get(path)
        if expected is None or not isinstance(leaf, np.ndarray):
            continue
        actual = crc32(leaf)
        if actual != expected:
            raise CheckpointError(
                f"{where}: {path} fails its CRC32 check (recorded {expected:08x}, read "
                f"{actual:08x}): its array data on disk is damaged"
            )


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
