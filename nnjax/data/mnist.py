"""MNIST and Fashion-MNIST, loaded like ``keras.datasets``.

Each file is looked up on disk (see :func:`nnjax.data.sources.search_dirs`), downloaded
into the user cache if absent, then parsed and checked against the checksum of its
decompressed bytes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from nnjax.data import idx, sources
from nnjax.data._checks import finite_number, flag
from nnjax.data.download import download_first
from nnjax.data.errors import CorruptFileError, DatasetNotFoundError

Split = tuple[np.ndarray, np.ndarray]
Mirrors = str | list[str] | tuple[str, ...] | None


def locate_file(
    spec: sources.RemoteDataset, file: sources.FileSpec, data_dir: str | os.PathLike | None
) -> Path | None:
    """The first existing copy of ``file`` in the search folders, or ``None``.

    A folder that cannot be searched (no permission) is skipped, so later folders are
    still tried; :func:`looked_in` notes it in the not-found message.

    Raises:
      TypeError, DatasetNotFoundError: a bad ``data_dir`` or ``$NNJAX_DATA_DIR`` (see
        :func:`nnjax.data.sources.search_dirs`).
    """
    for folder in sources.search_dirs(spec, data_dir):
        path = folder / file.name
        try:
            if path.is_file():
                return path
        except OSError:  # e.g. a folder without read/search permission
            continue
    return None


def looked_in(
    spec: sources.RemoteDataset, file: sources.FileSpec, data_dir: str | os.PathLike | None
) -> list[str]:
    """The folders searched for ``file``, each noted when it could not be searched."""
    lines = []
    for folder in sources.search_dirs(spec, data_dir):
        try:
            (folder / file.name).is_file()
        except OSError as err:
            lines.append(f"{folder} (could not be searched: {err.strerror or err})")
        else:
            lines.append(str(folder))
    return lines


def _check_timeout(op: str, timeout: float) -> float:
    return finite_number(op, "timeout", timeout, 0, open_low=True)


def verify_file(spec: sources.RemoteDataset, file: sources.FileSpec, path: Path) -> np.ndarray:
    """Fully checks ``path`` as a copy of ``file`` (structure, md5 and sha256).

    Returns:
      The parsed array.

    Raises:
      CorruptFileError: naming ``path``, what is wrong and how to get a good copy.
    """
    return read_file(spec, file, path, both_digests=True)


def read_file(
    spec: sources.RemoteDataset,
    file: sources.FileSpec,
    path: Path,
    *,
    both_digests: bool = False,
) -> np.ndarray:
    """Parses ``path`` as ``file``, checking its structure and its sha256 (and md5)."""
    return idx.read_idx_gz(
        path,
        magic=file_magic(file),
        md5=file.md5 if both_digests else None,
        sha256=file.sha256,
        remedy=sources.remedy(spec, file),
    )


def file_magic(file: sources.FileSpec) -> int:
    """The IDX magic number ``file`` must have (images or labels)."""
    return idx.IMAGES_MAGIC if "images" in file.name else idx.LABELS_MAGIC


def ensure_file(
    spec: sources.RemoteDataset,
    file: sources.FileSpec,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Mirrors = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """Returns a path to ``file``, downloading it into the cache when it is nowhere.

    Args:
      spec: the dataset.
      file: one of ``spec.files``.
      data_dir: an extra folder searched first.
      download: whether to download a missing file.
      mirrors: base URLs replacing the official ones (see
        :func:`nnjax.data.sources.mirror_urls`).
      progress: show a progress bar while downloading (``None``: on a terminal).
      timeout: seconds a download may wait for the server to connect or send more.

    Returns:
      The path of the file (not yet verified when it was found on disk).

    Raises:
      DatasetNotFoundError: the file is nowhere and could not be downloaded, or
        ``data_dir`` or ``$NNJAX_DATA_DIR`` is not a folder (checked before anything
        is downloaded).
      TypeError, ValueError: a bad ``data_dir``, ``mirrors``, ``timeout``,
        ``download`` or ``progress``.
    """
    _check_timeout("ensure_file", timeout)
    download = flag("ensure_file", "download", download)
    progress = flag("ensure_file", "progress", progress, optional=True)
    urls = [base + file.name for base in sources.mirror_urls(spec, mirrors)]
    found = locate_file(spec, file, data_dir)
    if found is not None:
        return found
    searched = looked_in(spec, file, data_dir)
    if not download:
        raise DatasetNotFoundError(
            f"{file.name} of {spec.name} not found; looked in:\n"
            + "".join(f"  {d}\n" for d in searched)
            + "Downloads are off (download=False). Put the file into one of those folders "
            f"(or set ${sources.DATA_DIR_ENV} to a folder holding {spec.name}/{file.name}), "
            f"run `nnjax data fetch {spec.name}`, or pass download=True; it is at:\n"
            + "".join(f"  {u}\n" for u in urls)
        )
    dest = sources.cache_dir() / spec.name / file.name
    return download_first(
        urls,
        dest,
        verify=functools.partial(verify_file, spec, file),
        progress=progress,
        searched=searched,
        timeout=timeout,
    )


def load_remote(
    spec: sources.RemoteDataset,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Mirrors = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> tuple[Split, Split]:
    """Loads an MNIST-layout dataset: ``((x_train, y_train), (x_test, y_test))``.

    Args and Raises: as for :func:`load_mnist`, for the dataset ``spec``.
    """
    op = "load_" + spec.name.replace("-", "_")
    _check_timeout(op, timeout)
    flag(op, "download", download)
    flag(op, "progress", progress, optional=True)
    sources.mirror_urls(spec, mirrors)  # bad arguments fail before any search or download
    sources.search_dirs(spec, data_dir)
    arrays = []
    for file in spec.files:
        path = ensure_file(
            spec,
            file,
            data_dir,
            download=download,
            mirrors=mirrors,
            progress=progress,
            timeout=timeout,
        )
        arrays.append(read_file(spec, file, path))
    x_train, y_train, x_test, y_test = arrays
    for images, labels, images_file, labels_file in (
        (x_train, y_train, spec.files[0], spec.files[1]),
        (x_test, y_test, spec.files[2], spec.files[3]),
    ):
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise CorruptFileError(
                images_file.name,
                "bad header",
                f"images of shape {images.shape} do not match {labels.shape[0]} labels "
                f"in {labels_file.name} (expected (N, 28, 28) and N labels)",
                sources.remedy(spec, images_file),
            )
    return (x_train, y_train), (x_test, y_test)


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Mirrors = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> tuple[Split, Split]:
    """Loads MNIST handwritten digits, like ``keras.datasets.mnist.load_data()``.

    Each of the four official files (``train-images-idx3-ubyte.gz``, ...) is taken from
    the first folder that has it: ``data_dir`` (or ``data_dir/mnist``),
    ``$NNJAX_DATA_DIR/mnist``, the user cache (:func:`~nnjax.data.cache_dir`
    ``/mnist``: ``$NNJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nnjax/datasets`` or
    ``~/.cache/nnjax/datasets``), else downloaded into the user cache.

    Args:
      data_dir: a folder holding the files (or ``mnist/``), searched first; it must
        exist.
      download: download missing files (atomically, checksum-verified).
      mirrors: base URLs (each holding ``mnist/<file>``) used instead of the official
        ones; ``$NNJAX_DATASET_MIRROR`` does the same.
      progress: show a progress bar while downloading (``None``: on a terminal);
        unless ``False``, each download attempt also prints one line to stderr.
      timeout: seconds each download attempt may wait for the server to connect or to
        send more data before the next URL is tried.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: uint8 images of shape
      ``(60000, 28, 28)`` and ``(10000, 28, 28)`` with values 0..255, and uint8 labels
      0..9 of shape ``(60000,)`` and ``(10000,)``. The arrays are writable copies.

    Raises:
      DatasetNotFoundError: a file is nowhere and could not be downloaded (the message
        lists the folders searched and the URLs tried); or ``data_dir``, or
        ``$NNJAX_DATA_DIR`` when set, is not a folder (raised before any download).
      CorruptFileError: a file is damaged (checksum mismatch, truncated, bad magic); the
        message names it and says how to get a good copy.
      UnreadableFileError: a file cannot be read (e.g. no permission); the message
        names it.
      TypeError: ``data_dir`` is not a path, ``mirrors`` not a str or list of str,
        ``timeout`` not a number, ``download`` not a bool, or ``progress`` not a bool
        or ``None``.
      ValueError: ``mirrors`` is empty, or ``timeout`` is not finite and > 0.

    Example:
      >>> (x, y), (xt, yt) = load_mnist()  # doctest: +SKIP
      >>> x.shape, x.dtype, y[:3]  # doctest: +SKIP
      ((60000, 28, 28), dtype('uint8'), array([5, 0, 4], dtype=uint8))
    """
    return load_remote(
        sources.MNIST,
        data_dir,
        download=download,
        mirrors=mirrors,
        progress=progress,
        timeout=timeout,
    )


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Mirrors = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> tuple[Split, Split]:
    """Loads Fashion-MNIST, like ``keras.datasets.fashion_mnist.load_data()``.

    The search order is that of :func:`load_mnist` with the folder name
    ``fashion-mnist``, plus Debian's ``dataset-fashion-mnist`` install
    (``/usr/share/datasets/fashion-mnist``) before downloading. Class names are in
    :data:`FASHION_MNIST_CLASSES`.

    Args:
      data_dir: a folder holding the files (or ``fashion-mnist/``), searched first; it
        must exist.
      download: download missing files (atomically, checksum-verified).
      mirrors: base URLs (each holding ``fashion-mnist/<file>``) used instead of the
        official ones; ``$NNJAX_DATASET_MIRROR`` does the same.
      progress: as for :func:`load_mnist`.
      timeout: as for :func:`load_mnist`.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: uint8 images ``(60000, 28, 28)`` and
      ``(10000, 28, 28)``, uint8 labels 0..9 ``(60000,)`` and ``(10000,)``.

    Raises:
      DatasetNotFoundError, CorruptFileError, UnreadableFileError, TypeError, ValueError:
        as for :func:`load_mnist`.

    Example:
      >>> (x, y), _ = load_fashion_mnist()  # doctest: +SKIP
      >>> FASHION_MNIST_CLASSES[y[0]]  # doctest: +SKIP
      'Ankle boot'
    """
    return load_remote(
        sources.FASHION_MNIST,
        data_dir,
        download=download,
        mirrors=mirrors,
        progress=progress,
        timeout=timeout,
    )


FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST class names, indexed by label."""
