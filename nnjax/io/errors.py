"""The error of a checkpoint that cannot be read or does not fit."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint is damaged, incomplete, of a future format, or does not fit the model.

    The message is one line naming the file or array path and what is wrong.

    Example:
      >>> str(CheckpointError("run/3/nnjax.json: missing"))
      'run/3/nnjax.json: missing'
    """


class CheckpointFallbackWarning(UserWarning):
    """A damaged checkpoint was skipped and an older intact one loaded (``fallback=True``)."""


def cannot_write(path: Path, err: OSError) -> OSError:
    """``err`` (the same kind of ``OSError``) with a message naming ``path`` and why.

    The failing call names a parent folder or a hidden temporary file; the user passed
    ``path``. A parent that is a file, not a folder, is named as such.

    Example:
      >>> err = cannot_write(Path("/no/such"), PermissionError(13, "Permission denied"))
      >>> type(err).__name__, str(err)
      ('PermissionError', '[Errno 13] cannot write /no/such: Permission denied')
    """
    if isinstance(err, (FileExistsError, NotADirectoryError)) and path.is_file():
        return type(err)(err.errno, f"cannot write {path}: {path} is a file, not a folder")
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        why = f"{existing} is a file, not a folder"
    else:
        why = err.strerror or str(err)
    return type(err)(err.errno, f"cannot write {path}: {why}")


__all__ = ["CheckpointError", "CheckpointFallbackWarning"]
