"""JSON files written atomically and read with one-line errors (``nnjax.json``, configs).

:mod:`nnjax.io.layout` re-exports both functions, which the rest of nnjax calls there.

Example:
  >>> import tempfile
  >>> p = Path(tempfile.mkdtemp()) / "a.json"
  >>> write_json(p, [1, 2]); read_json(p)
  [1, 2]
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import jax

from nnjax.io import _orbax
from nnjax.io.errors import CheckpointError


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes ``data`` as JSON atomically (a temporary file, then ``os.replace``).

    A crash or a full disk never leaves ``path`` empty or half-written: it holds the
    old content or the new. With several JAX processes only process 0 writes.

    Raises:
      OSError: the file cannot be written (one line naming it and the cause); the
        temporary file is removed and ``path`` is unchanged.
    """
    if jax.process_index() != 0:
        return
    path = Path(path)
    text = json.dumps(data, indent=2)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; a missing, empty or garbled file is one line naming it.

    Raises:
      CheckpointError: the file is missing, empty, not UTF-8 or not JSON.

    Example:
      >>> import tempfile
      >>> p = Path(tempfile.mkdtemp()) / "config.json"
      >>> write_json(p, {"a": 1})
      >>> read_json(p)
      {'a': 1}
    """
    path = Path(path).absolute()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable ({_orbax.short(err)})") from None
    if not text.strip():
        raise CheckpointError(f"{path}: empty file (an interrupted write of an older nnjax?)")
    try:
        return json.loads(text)
    except ValueError as err:
        raise CheckpointError(f"{path}: garbled JSON ({_orbax.short(err)})") from None


__all__ = ["read_json", "write_json"]
