"""The error of a checkpoint that cannot be read or does not fit."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint is damaged, incomplete, of a future format, or does not fit the model.

    The message is one line naming the file or array path and what is wrong.

    Example:
      >>> str(CheckpointError("run/3/nnjax.json: missing"))
      'run/3/nnjax.json: missing'
    """


class CheckpointFallbackWarning(UserWarning):
    """A damaged checkpoint was skipped and an older intact one loaded (``fallback=True``)."""


__all__ = ["CheckpointError", "CheckpointFallbackWarning"]
