"""Exceptions raised by the dataset loaders.

Every error names the file or dataset concerned, says what is wrong and how to put it
right; the classes let callers (the ``nnjax data`` command, a training script) tell a
missing dataset from a damaged one.
"""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of the errors raised by :mod:`nnjax.data`."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is nowhere on disk and could not be downloaded.

    The message lists every folder searched and every URL tried, with the reason each
    download failed.
    """


class CorruptFileError(DatasetError, ValueError):
    """A dataset file exists but is damaged.

    Attributes:
      path: the offending file (or the URL a rejected download came from).
      reason: a short tag: ``"checksum mismatch"``, ``"truncated"``, ``"bad magic"``,
        ``"not gzip"`` or ``"bad header"``.
      detail: what is wrong, without the path and the remedy.
    """

    def __init__(self, path: str, reason: str, detail: str, remedy: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        msg = f"{self.path}: {reason}: {detail}"
        if remedy:
            msg += f". {remedy}"
        super().__init__(msg)


class UnreadableFileError(DatasetError, OSError):
    """A dataset file exists but cannot be read (no permission, an I/O error).

    The message is ``"<path>: unreadable: <detail>. <fix>"``, then ``", or: <remedy>"``
    when a remedy is given; ``fix`` defaults to making the file readable.

    Attributes:
      path: the offending file.
      reason: ``"unreadable"``.
      detail: the operating system's explanation, e.g. ``"Permission denied"``.
    """

    def __init__(
        self,
        path: str,
        detail: str,
        remedy: str = "",
        *,
        fix: str = "Make it readable (e.g. `chmod a+r`)",
    ) -> None:
        self.path = str(path)
        self.reason = "unreadable"
        self.detail = detail
        msg = f"{self.path}: unreadable: {detail}. {fix}"
        if remedy:
            msg += f", or: {remedy}"
        super().__init__(msg)
