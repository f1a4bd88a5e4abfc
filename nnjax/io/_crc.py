"""Per-array CRC32 checksums: recorded in ``nnjax.json`` at save, verified at load (private).

Orbax and TensorStore store large chunks uncompressed and unchecked, so a flipped bit
on disk would load as a wrong weight. :func:`of_items` records ``zlib.crc32`` of each
host array's bytes (``{"state": {"layers/0/kernel": 1234, ...}, ...}``); arrays sharded
across processes (each process writes only its shards) are not recorded. :func:`verify`
checks every restored host array that has a record; checkpoints written without the
record load as before.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from nnjax.io.errors import CheckpointError

#: The key of the records in ``nnjax.json``.
KEY = "crc32"


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
