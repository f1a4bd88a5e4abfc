"""Atomic, verified downloads with a progress bar.

A download goes to a temporary file in the destination folder, is checked, and only then
renamed into place with :func:`os.replace`: a partial or corrupt download never sits
under the final name.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import sys
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from nnjax.data.errors import CorruptFileError, DatasetNotFoundError

_CHUNK = 1 << 16


def _progress(
    total: int | None, desc: str, enabled: bool | None
) -> contextlib.AbstractContextManager:
    """A tqdm bar when ``enabled`` (default: stderr is a terminal), else a no-op."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            enabled = False
    if not enabled:
        return contextlib.nullcontext(None)
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def _copy_stream(
    src: BinaryIO, dst: BinaryIO, total: int | None, desc: str, progress: bool | None
) -> int:
    """Copies ``src`` to ``dst`` in chunks, updating a progress bar; returns the byte count."""
    count = 0
    with _progress(total, desc, progress) as bar:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
            count += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return count


@contextlib.contextmanager
def _temporary_sibling(dest: Path) -> Iterator[Path]:
    """A new file ``.<name>.<random>.part`` next to ``dest``, removed on exit unless renamed.

    It is created as ``open`` creates files, with mode ``0o666`` less the umask (not
    :func:`tempfile.mkstemp`'s owner-only ``0o600``): renamed to ``dest``, it must be
    readable as any other file of the folder, e.g. in a cache shared by a team.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.part")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    verify: Callable[[Path], object] | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """Downloads ``url`` to ``dest`` atomically.

    Args:
      url: the URL to fetch.
      dest: the final path; its folder is created if needed.
      verify: called with the path of the finished temporary file before it is moved
        into place; it raises (e.g. :class:`CorruptFileError`) to reject the file.
      progress: show a tqdm progress bar; ``None`` shows one when stderr is a terminal.
        Unless ``False``, one line ``downloading <url> -> <dest>`` goes to stderr first.
      timeout: seconds to wait for the connection and for each read: a server that
        sends nothing for that long fails the download (``TimeoutError``).

    Returns:
      ``dest`` as a :class:`~pathlib.Path`.

    Raises:
      OSError: the download failed (``urllib.error.URLError`` is one); nothing is left at ``dest``.
      CorruptFileError: the download is short or ``verify`` rejected it; its ``path``
        is ``url`` (the temporary file is gone) and nothing is left at ``dest``.

    Example:
      >>> import pathlib, tempfile
      >>> src = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
      >>> _ = src.write_text("hi")
      >>> download_file(src.as_uri(), src.with_name("b.txt"), progress=False).read_text()
      'hi'
    """
    dest = Path(dest)
    if progress is not False:
        print(f"downloading {url} -> {dest}", file=sys.stderr, flush=True)
    with _temporary_sibling(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            count = _copy_stream(response, out, total, dest.name, progress)
        if total is not None and count != total:
            raise CorruptFileError(
                url, "truncated", f"received {count} of {total} bytes", "Try again"
            )
        if verify is not None:
            try:
                verify(tmp)
            except CorruptFileError as err:  # about the server's file, not the .part
                raise CorruptFileError(
                    url,
                    err.reason,
                    f"the server sent something that is not a good {dest.name} ({err.detail})",
                ) from err
        os.replace(tmp, dest)
    return dest


def download_first(
    urls: Sequence[str],
    dest: str | os.PathLike,
    *,
    verify: Callable[[Path], object] | None = None,
    progress: bool | None = None,
    searched: Sequence[os.PathLike | str] = (),
    timeout: float = 60.0,
) -> Path:
    """Downloads from the first of ``urls`` that works and passes ``verify``.

    Args:
      urls: full URLs of the same file on different mirrors, tried in order.
      dest: the final path.
      verify: as for :func:`download_file`.
      progress: as for :func:`download_file`.
      searched: folders already searched, listed in the error message.
      timeout: as for :func:`download_file`, per URL.

    Returns:
      ``dest`` as a :class:`~pathlib.Path`.

    Raises:
      DatasetNotFoundError: every URL failed; the message lists the folders searched
        and each URL with its failure.

    Example:
      >>> import pathlib, tempfile
      >>> src = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
      >>> _ = src.write_text("hi")
      >>> bad = src.with_name("missing.txt").as_uri()
      >>> download_first([bad, src.as_uri()], src.with_name("b.txt"), progress=False).read_text()
      'hi'
    """
    failures = []
    for url in urls:
        try:
            return download_file(url, dest, verify=verify, progress=progress, timeout=timeout)
        except CorruptFileError as err:
            failures.append(f"  {url}: {err.reason}: {err.detail}")
        except (OSError, ValueError, http.client.HTTPException) as err:
            failures.append(f"  {url}: {err}")
    looked = "".join(f"\n  {d}" for d in searched) or "\n  (nowhere)"
    raise DatasetNotFoundError(
        f"{Path(dest).name} was not found and could not be downloaded.\n"
        f"Looked in:{looked}\nTried:\n" + "\n".join(failures) + "\n"
        "Download the file by hand into one of those folders, or set NNJAX_DATA_DIR "
        "(or NNJAX_DATASET_MIRROR) to a copy."
    )
