"""A registry of the datasets by name, for the ``nnjax data`` command and scripts.

:func:`available_datasets` lists the names, :func:`dataset_info` describes one,
:func:`load` loads one as ``((x_train, y_train), (x_test, y_test))``, :func:`verify`
checksums its files on disk and :func:`fetch` downloads them into the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnjax.data import mnist, sources, synthetic
from nnjax.data._checks import flag
from nnjax.data.digits import load_digits
from nnjax.data.errors import CorruptFileError, UnreadableFileError

Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset is.

    Attributes:
      name: the registry name, e.g. ``"fashion-mnist"``.
      description: one line.
      task: ``"classification"`` or ``"regression"``.
      input_shape: the shape of one example.
      num_classes: the number of classes, or ``None`` for regression.
      needs_download: whether the data comes from the network (unless found on disk).
      requires: the optional package it needs, or ``None``.
      files: the official file names (empty when nothing is read from disk).
      urls: the official base URLs (empty when nothing is downloaded).
    """

    name: str
    description: str
    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None
    needs_download: bool = False
    requires: str | None = None
    files: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FileReport:
    """The result of checking one file with :func:`verify`.

    Attributes:
      name: the official file name.
      path: where it was found, or ``None`` when missing.
      status: ``"ok"``, ``"missing"`` or the problem (``"checksum mismatch"``,
        ``"truncated"``, ``"bad magic"``, ``"not gzip"``, ``"bad header"``,
        ``"unreadable"``).
      detail: a human-readable explanation (empty when ok).
    """

    name: str
    path: Path | None
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the file is present and intact."""
        return self.status == "ok"


def _synthetic_split(
    make: Callable[..., Split], n_train: int, n_test: int, **kw
) -> tuple[Split, Split]:
    """Train and test sets from one generator with different seeds."""
    return make(n_train, seed=0, **kw), make(n_test, seed=1, **kw)


def _one_draw_split(
    make: Callable[..., Split], n_train: int, n_test: int, **kw
) -> tuple[Split, Split]:
    """Train and test sets split from one shuffled draw (``seed=0``).

    For generators whose distribution itself is random (the centres of :func:`blobs`):
    two draws with different seeds would put the test clusters elsewhere.
    """
    x, y = make(n_train + n_test, seed=0, **kw)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def _gate_split(name: str) -> tuple[Split, Split]:
    """A truth table serves as both train and test set."""
    table = synthetic.logic_gate(name)
    return table, synthetic.logic_gate(name)


def _remote_info(spec: sources.RemoteDataset, description: str) -> DatasetInfo:
    return DatasetInfo(
        name=spec.name,
        description=description,
        task="classification",
        input_shape=(28, 28),
        num_classes=10,
        needs_download=True,
        files=tuple(f.name for f in spec.files),
        urls=spec.urls,
    )


_REGISTRY: dict[str, tuple[DatasetInfo, Callable[..., tuple[Split, Split]]]] = {
    "fashion-mnist": (
        _remote_info(sources.FASHION_MNIST, "Zalando Fashion-MNIST, 70000 28x28 clothing images"),
        mnist.load_fashion_mnist,
    ),
    "mnist": (
        _remote_info(sources.MNIST, "MNIST handwritten digits, 70000 28x28 images"),
        mnist.load_mnist,
    ),
    "digits": (
        DatasetInfo(
            "digits",
            "scikit-learn's bundled 8x8 digits, 1797 images (offline)",
            "classification",
            (8, 8),
            10,
            requires="scikit-learn",
        ),
        load_digits,
    ),
    "xor": (
        DatasetInfo("xor", "XOR truth table, 4 examples", "classification", (2,), 2),
        functools.partial(_gate_split, "xor"),
    ),
    "adding": (
        DatasetInfo(
            "adding",
            "LSTM adding problem, sequences of 50 steps (value, marker)",
            "regression",
            (50, 2),
            None,
        ),
        functools.partial(_synthetic_split, synthetic.adding_problem, 2000, 500, seq_len=50),
    ),
    "sine": (
        DatasetInfo(
            "sine", "noisy sine windows of 20 steps -> next value", "regression", (20, 1), None
        ),
        functools.partial(_synthetic_split, synthetic.sine_sequences, 2000, 500, window=20),
    ),
    "moons": (
        DatasetInfo(
            "moons", "two interleaving half circles, 2-D points", "classification", (2,), 2
        ),
        functools.partial(_synthetic_split, synthetic.two_moons, 1000, 500),
    ),
    "blobs": (
        DatasetInfo("blobs", "three Gaussian clusters, 2-D points", "classification", (2,), 3),
        functools.partial(_one_draw_split, synthetic.blobs, 1000, 500),
    ),
}


def available_datasets() -> tuple[str, ...]:
    """The names :func:`load` and :func:`dataset_info` accept.

    Example:
      >>> "fashion-mnist" in available_datasets()
      True
    """
    return tuple(_REGISTRY)


#: The function to call, for datasets whose ``load`` takes no keyword arguments.
_GENERATORS = {
    "xor": "xor() or logic_gate(...)",
    "adding": "adding_problem(...)",
    "sine": "sine_sequences(...)",
    "moons": "two_moons(...)",
    "blobs": "blobs(...)",
}


def _lookup(
    name: str, op: str = "dataset_info"
) -> tuple[DatasetInfo, Callable[..., tuple[Split, Split]]]:
    if not isinstance(name, str):
        raise TypeError(
            f"{op}: `name` must be a dataset name (a str) such as 'mnist', got {name!r}; "
            f"available: {', '.join(_REGISTRY)}"
        )
    key = name.lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def dataset_info(name: str) -> DatasetInfo:
    """Describes the dataset ``name`` (``_`` and ``-`` are interchangeable).

    Raises:
      ValueError: an unknown name; the message lists the available ones.
      TypeError: ``name`` is not a string.

    Example:
      >>> dataset_info("mnist").needs_download, dataset_info("xor").needs_download
      (True, False)
    """
    return _lookup(name)[0]


def load(name: str, data_dir: str | os.PathLike | None = None, **kwargs) -> tuple[Split, Split]:
    """Loads the dataset ``name`` as ``((x_train, y_train), (x_test, y_test))``.

    Args:
      name: a name from :func:`available_datasets`.
      data_dir: a folder to search first (used by the downloadable datasets only).
      **kwargs: passed on to the loader of ``mnist`` and ``fashion-mnist`` (e.g.
        ``download=False``) and of ``digits`` (``test_fraction``, ``seed``). The
        synthetic sets take none: call their generator (e.g. :func:`two_moons`).

    Returns:
      The split, with the dtypes of the underlying loader.

    Raises:
      ValueError: an unknown name.
      TypeError: ``name`` is not a string, or keyword arguments for a synthetic set
        (the message names the generator to call instead).
      DatasetError: as the loader raises (see :func:`load_mnist`).

    Example:
      >>> (x, y), (xt, yt) = load("xor")
      >>> x.shape, y.shape
      ((4, 2), (4,))
    """
    info, loader = _lookup(name, "load")
    if info.needs_download:
        return loader(data_dir, **kwargs)
    if kwargs and info.name in _GENERATORS:
        raise TypeError(
            f"load: {info.name!r} takes no keyword arguments, got {', '.join(kwargs)}; "
            f"call nnjax.data.{_GENERATORS[info.name]} to choose them"
        )
    return loader(**kwargs)


def _remote_spec(name: str, op: str) -> sources.RemoteDataset | None:
    """The files-and-URLs spec of ``name``, or ``None`` when it has no files."""
    return sources.REMOTE_DATASETS.get(_lookup(name, op)[0].name)


def verify(name: str, data_dir: str | os.PathLike | None = None) -> list[FileReport]:
    """Checks every file of ``name`` on disk (structure, md5 and sha256); no download.

    Args:
      name: a dataset name; datasets without files give an empty list.
      data_dir: a folder to search first, as for the loaders.

    Returns:
      One :class:`FileReport` per file, in the official order; a file that cannot be
      read (e.g. no permission) gets ``status="unreadable"``.

    Raises:
      ValueError: an unknown name.
      TypeError: ``name`` is not a string, or ``data_dir`` not a path.
      DatasetNotFoundError: ``data_dir``, or ``$NNJAX_DATA_DIR`` when set, is not a
        folder.

    Example:
      >>> verify("xor")
      []
    """
    spec = _remote_spec(name, "verify")
    if spec is None:
        return []
    reports = []
    for file in spec.files:
        path = mnist.locate_file(spec, file, data_dir)
        if path is None:
            searched = ", ".join(mnist.looked_in(spec, file, data_dir))
            reports.append(FileReport(file.name, None, "missing", f"looked in {searched}"))
            continue
        try:
            mnist.verify_file(spec, file, path)
        except (CorruptFileError, UnreadableFileError) as err:
            reports.append(FileReport(file.name, path, err.reason, str(err)))
        except OSError as err:  # e.g. the file vanished between the search and the read
            reports.append(FileReport(file.name, path, "unreadable", f"{path}: {err}"))
        else:
            reports.append(FileReport(file.name, path, "ok"))
    return reports


def fetch(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    mirrors: str | list[str] | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Makes sure every file of ``name`` is on disk and intact, downloading into the cache.

    Files already found (see :func:`nnjax.data.sources.search_dirs`) are verified, not
    downloaded again.

    Args:
      name: a dataset name; datasets without files give an empty list.
      data_dir: a folder to search first.
      mirrors: base URLs replacing the official ones.
      progress: show a progress bar (``None``: on a terminal); unless ``False``, each
        download attempt also prints one line to stderr.
      timeout: seconds each download attempt may wait for the server to connect or to
        send more data before the next URL is tried.

    Returns:
      The path of each file.

    Raises:
      DatasetNotFoundError: a file could not be downloaded, or ``data_dir`` (or
        ``$NNJAX_DATA_DIR`` when set) is not a folder (raised before any download).
      CorruptFileError: a file on disk is damaged.
      UnreadableFileError: a file on disk cannot be read.
      TypeError, ValueError: a bad ``name``, ``data_dir``, ``mirrors``, ``progress`` or
        ``timeout``.

    Example:
      >>> fetch("xor")
      []
    """
    spec = _remote_spec(name, "fetch")
    if spec is None:
        return []
    mnist._check_timeout("fetch", timeout)
    flag("fetch", "progress", progress, optional=True)
    sources.mirror_urls(spec, mirrors)  # bad arguments fail before any search or download
    sources.search_dirs(spec, data_dir)
    paths = []
    for file in spec.files:
        path = mnist.ensure_file(
            spec, file, data_dir, mirrors=mirrors, progress=progress, timeout=timeout
        )
        mnist.verify_file(spec, file, path)
        paths.append(path)
    return paths
