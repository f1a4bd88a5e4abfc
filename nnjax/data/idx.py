"""Reading and validating IDX files (the MNIST file format).

An IDX file is a big-endian header, ``0x00 0x00 <type code> <rank>`` followed by one
32-bit size per axis, then the array body. The MNIST-style datasets ship each IDX file
gzip-compressed; their checksums are taken over the *decompressed* bytes, so a copy that
was re-compressed (as Debian's are) still verifies.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib

import numpy as np

from nnjax.data.errors import CorruptFileError, UnreadableFileError

#: Magic number of an IDX file of unsigned bytes with three axes (images).
IMAGES_MAGIC = 2051
#: Magic number of an IDX file of unsigned bytes with one axis (labels).
LABELS_MAGIC = 2049

_TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(
    data: bytes, *, name: str = "<bytes>", magic: int | None = None, remedy: str = ""
) -> np.ndarray:
    """Parses the decompressed bytes of an IDX file into a NumPy array.

    Args:
      data: the whole decompressed file (``bytes``, ``bytearray`` or ``memoryview``).
      name: the file's name or path, used in error messages.
      magic: the magic number the file must have (e.g. :data:`IMAGES_MAGIC`), or
        ``None`` to accept any valid IDX type code.
      remedy: a sentence appended to error messages saying how to get a good copy.

    Returns:
      A writable array in native byte order, with the shape the header gives.

    Raises:
      CorruptFileError: ``"bad magic"`` when the magic number is wrong, ``"truncated"``
        when the body is shorter than the header says, ``"bad header"`` when the file is
        too short for its header or has trailing bytes.
      TypeError: ``data`` is not bytes-like (e.g. a ``str`` or a path).

    Example:
      >>> import numpy as np
      >>> raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
      >>> parse_idx(raw, magic=LABELS_MAGIC)
      array([7, 8, 9], dtype=uint8)
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            f"parse_idx: `data` must be the bytes of an IDX file, got {type(data).__name__}; "
            "use read_idx_gz(path) for a file"
        )
    data = bytes(data)
    if len(data) < 4:
        raise CorruptFileError(name, "bad header", f"only {len(data)} bytes", remedy)
    found = int.from_bytes(data[:4], "big")
    type_code, rank = data[2], data[3]
    if (
        data[:2] != b"\0\0"
        or type_code not in _TYPE_CODES
        or (magic is not None and found != magic)
    ):
        want = f"{magic}" if magic is not None else "a valid IDX magic number"
        raise CorruptFileError(
            name, "bad magic", f"magic number {found} (0x{found:08x}), expected {want}", remedy
        )
    header = 4 + 4 * rank
    if len(data) < header:
        raise CorruptFileError(
            name, "bad header", f"{len(data)} bytes, too short for a rank-{rank} header", remedy
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    dtype = _TYPE_CODES[type_code]
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(data) < expected:
        raise CorruptFileError(
            name,
            "truncated",
            f"header says shape {shape} ({expected} bytes) but the data has {len(data)} bytes",
            remedy,
        )
    if len(data) > expected:
        raise CorruptFileError(
            name,
            "bad header",
            f"header says shape {shape} ({expected} bytes) but the data has {len(data)} bytes",
            remedy,
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def decompress(data: bytes, *, name: str = "<bytes>", remedy: str = "") -> bytes:
    """Gunzips ``data``, turning every failure into a :class:`CorruptFileError`.

    Args:
      data: the bytes of a ``.gz`` file.
      name: the file's name or path, used in error messages.
      remedy: a sentence appended to error messages saying how to get a good copy.

    Returns:
      The decompressed bytes.

    Raises:
      CorruptFileError: ``"truncated"`` when the stream ends early, ``"not gzip"`` when
        the data is not a valid gzip stream (bad header, corrupt deflate data or CRC).

    Example:
      >>> import gzip
      >>> decompress(gzip.compress(b"abc"))
      b'abc'
    """
    chunks = []
    rest = data
    try:
        while True:
            stream = zlib.decompressobj(wbits=31)
            chunks.append(stream.decompress(rest))
            if not stream.eof:
                raise CorruptFileError(
                    name, "truncated", f"the gzip stream ends early after {len(data)} bytes", remedy
                )
            rest = stream.unused_data.lstrip(b"\0")
            if not rest:
                return b"".join(chunks)
    except zlib.error as err:
        raise CorruptFileError(name, "not gzip", f"not a valid gzip file ({err})", remedy) from err


def check_digest(
    data: bytes,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    name: str = "<bytes>",
    remedy: str = "",
) -> None:
    """Checks the md5 and/or sha256 digest of ``data``.

    Args:
      data: the decompressed bytes.
      md5: the expected hex md5 digest, or ``None`` to skip that check.
      sha256: the expected hex sha256 digest, or ``None`` to skip that check.
      name: the file's name or path, used in error messages.
      remedy: a sentence appended to error messages saying how to get a good copy.

    Raises:
      CorruptFileError: ``"checksum mismatch"``, giving expected and actual digests.

    Example:
      >>> check_digest(b"", md5="d41d8cd98f00b204e9800998ecf8427e")
    """
    checks = [("md5", md5, hashlib.md5), ("sha256", sha256, hashlib.sha256)]
    for algo, want, fn in checks:
        if want is None:
            continue
        got = fn(data).hexdigest()
        if got != want.lower():
            raise CorruptFileError(
                name,
                "checksum mismatch",
                f"{algo} of the decompressed bytes is {got}, expected {want}",
                remedy,
            )


def read_idx_gz(
    path: str | os.PathLike,
    *,
    magic: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    remedy: str = "",
) -> np.ndarray:
    """Reads a gzip-compressed IDX file, validating its structure and checksum.

    The structure is checked before the checksum, so a damaged file gets the most
    specific diagnosis (truncated, bad magic) rather than a bare checksum mismatch.

    Args:
      path: the ``.gz`` file.
      magic: the magic number the file must have, or ``None``.
      md5: the expected md5 of the decompressed bytes, or ``None`` to skip.
      sha256: the expected sha256 of the decompressed bytes, or ``None`` to skip
        (sha256 alone is the faster check on CPUs with SHA instructions).
      remedy: a sentence appended to error messages saying how to get a good copy.

    Returns:
      The parsed array (see :func:`parse_idx`).

    Raises:
      CorruptFileError: naming ``path`` and what is wrong with it.
      FileNotFoundError: ``path`` does not exist (the error names it).
      UnreadableFileError: ``path`` cannot be read (e.g. no permission, or it is a
        folder); the message names it and says to make it readable or replace it.
      TypeError: ``path`` is not a path (a ``str``, ``bytes`` or ``os.PathLike``).

    Example:
      >>> import gzip, os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
      >>> with open(path, "wb") as f:
      ...     _ = f.write(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 2])))
      >>> read_idx_gz(path, magic=LABELS_MAGIC)
      array([4, 2], dtype=uint8)
    """
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(
            f"read_idx_gz: `path` must be a path (str or os.PathLike), got {path!r}; "
            "use parse_idx(data) for the bytes of a file already in memory"
        )
    name = os.fsdecode(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except IsADirectoryError as err:
        fix = "It is a folder: pass the path of the .gz file in it"
        raise UnreadableFileError(name, err.strerror or str(err), remedy, fix=fix) from err
    except OSError as err:  # no permission, an I/O error
        raise UnreadableFileError(name, err.strerror or str(err), remedy) from err
    raw = decompress(data, name=name, remedy=remedy)
    array = parse_idx(raw, name=name, magic=magic, remedy=remedy)
    check_digest(raw, md5=md5, sha256=sha256, name=name, remedy=remedy)
    return array
