"""Where the downloadable datasets live: file names, checksums, URLs and folders.

The checksums are of the *decompressed* IDX bytes (see ``shared/data/README.md``), so a
re-compressed copy, such as Debian's ``dataset-fashion-mnist`` package, verifies too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from nnjax.data.errors import DatasetNotFoundError

#: Environment variable naming the shared dataset root (``<root>/<dataset>/<file>``).
DATA_DIR_ENV = "NNJAX_DATA_DIR"
#: Environment variable naming the download cache folder (``<cache>/<dataset>/<file>``).
CACHE_DIR_ENV = "NNJAX_CACHE_DIR"
#: Environment variable with base URLs (space or comma separated) to download from
#: instead of the official ones; files are fetched from ``<base>/<dataset>/<file>``.
MIRROR_ENV = "NNJAX_DATASET_MIRROR"


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One official dataset file.

    Attributes:
      name: the official file name, e.g. ``"train-images-idx3-ubyte.gz"``.
      md5: md5 of the decompressed bytes.
      sha256: sha256 of the decompressed bytes.
    """

    name: str
    md5: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class RemoteDataset:
    """A dataset made of files that may need downloading.

    Attributes:
      name: the dataset's name and its folder name, e.g. ``"fashion-mnist"``.
      files: the files, train images, train labels, test images, test labels.
      urls: official base URLs, tried in order; a file is at ``<base><file name>``.
      system_dirs: folders where an operating-system package installs the files.
    """

    name: str
    files: tuple[FileSpec, ...]
    urls: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()

    def file(self, name: str) -> FileSpec:
        """Returns the :class:`FileSpec` called ``name``."""
        for spec in self.files:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no file {name!r}")


FASHION_MNIST = RemoteDataset(
    name="fashion-mnist",
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            "9018921c3c673c538a1fc5bad174d6f9",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "8181f5470baa50b63fa0f6fddb340f0a",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "15d484375f8d13e6eb1aabb0c3f46965",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    urls=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)

MNIST = RemoteDataset(
    name="mnist",
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            "6bbc9ace898e44ae57da46a324031adb",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            "a25bea736e30d166cdddb491f175f624",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "2646ac647ad5339dbf082846283269ea",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "27ae3e4e09519cfbb04c329615203637",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    urls=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
)

REMOTE_DATASETS = {spec.name: spec for spec in (FASHION_MNIST, MNIST)}


def cache_dir() -> Path:
    """The folder downloads go to: ``$NNJAX_CACHE_DIR``, else the user cache.

    The user cache is ``$XDG_CACHE_HOME/nnjax/datasets``, or
    ``~/.cache/nnjax/datasets`` when ``XDG_CACHE_HOME`` is unset. Each dataset gets
    a sub-folder named after it.

    Returns:
      The cache root (it may not exist yet).

    Example:
      >>> isinstance(cache_dir(), Path)
      True
    """
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "nnjax" / "datasets"


def checked_data_dir(data_dir: object) -> Path | None:
    """An explicit ``data_dir`` as a :class:`~pathlib.Path` after checking it is a folder.

    A leading ``~`` is expanded to the home folder, as for ``$NNJAX_CACHE_DIR``.

    Raises:
      TypeError: ``data_dir`` is not a path (a ``str`` or ``os.PathLike``).
      DatasetNotFoundError: ``data_dir`` does not exist or is not a folder; nothing is
        searched or downloaded (a typo must not send the loader to other folders or
        to the network).
    """
    if data_dir is None:
        return None
    try:
        path = Path(os.fspath(data_dir)).expanduser()  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"`data_dir` must be a path (str or os.PathLike), got {data_dir!r}"
        ) from None
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DatasetNotFoundError(
            f"data_dir {str(path)!r} {what}; pass the folder that holds the dataset files "
            f"(or its parent), or data_dir=None to search ${DATA_DIR_ENV} and the cache"
        )
    return path


def env_data_dir() -> Path | None:
    """``$NNJAX_DATA_DIR`` as a :class:`~pathlib.Path`, or ``None`` when unset or empty.

    A leading ``~`` is expanded (a ``.env`` file or a Dockerfile ``ENV`` keeps it literal).

    Raises:
      DatasetNotFoundError: the variable is set to something that is not a folder
        (never silently skipped: the loader would go on to download).
    """
    env = os.environ.get(DATA_DIR_ENV)
    if not env:
        return None
    path = Path(env).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DatasetNotFoundError(
            f"{DATA_DIR_ENV} is set to {env!r}, which {what}; point it at the folder "
            f"holding <dataset>/<file> (e.g. mnist/train-images-idx3-ubyte.gz) or unset it"
        )
    return path


def search_dirs(spec: RemoteDataset, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for ``spec``'s files, in order.

    ``data_dir`` and ``data_dir/<name>`` when given, then ``$NNJAX_DATA_DIR/<name>``,
    then the user cache (:func:`cache_dir` ``/<name>``), then the system folders.

    Args:
      spec: the dataset.
      data_dir: an explicit folder holding the files (or a root holding ``<name>/``).

    Returns:
      The candidate folders, without duplicates; the sub-folders, the cache and the
      system folders need not exist.

    Raises:
      TypeError: ``data_dir`` is not a path.
      DatasetNotFoundError: ``data_dir``, or ``$NNJAX_DATA_DIR`` when set, is not an
        existing folder (see :func:`checked_data_dir` and :func:`env_data_dir`).

    Example:
      >>> import tempfile
      >>> root = Path(tempfile.mkdtemp())
      >>> search_dirs(MNIST, root)[:2] == [root, root / "mnist"]
      True
    """
    dirs: list[Path] = []
    explicit = checked_data_dir(data_dir)
    if explicit is not None:
        dirs += [explicit, explicit / spec.name]
    env = env_data_dir()
    if env is not None:
        dirs.append(env / spec.name)
    dirs.append(cache_dir() / spec.name)
    dirs += [Path(d) for d in spec.system_dirs]
    return list(dict.fromkeys(dirs))


def mirror_urls(
    spec: RemoteDataset, mirrors: str | list[str] | tuple[str, ...] | None
) -> list[str]:
    """The base URLs to download ``spec``'s files from, in order.

    Explicit ``mirrors`` replace the official URLs; each is a base holding
    ``<name>/<file>`` (the layout of ``$NNJAX_DATA_DIR``). Without them,
    ``$NNJAX_DATASET_MIRROR`` (space or comma separated bases, same layout) replaces the
    official URLs when set; otherwise the official URLs are used.

    Args:
      spec: the dataset.
      mirrors: a base URL or a sequence of them, or ``None``.

    Returns:
      Base URLs ending in ``/``, such that a file is at ``<base><file name>``.

    Raises:
      TypeError: ``mirrors`` is not a str or a sequence of str (e.g. ``5``).
      ValueError: ``mirrors`` is empty or holds an empty URL (``[]``, ``""``).

    Example:
      >>> mirror_urls(MNIST, "http://127.0.0.1:8000")
      ['http://127.0.0.1:8000/mnist/']
    """
    if mirrors is None:
        env = os.environ.get(MIRROR_ENV, "").replace(",", " ").split()
        if not env:
            return list(spec.urls)
        mirrors = env
    bases = [mirrors] if isinstance(mirrors, str) else mirrors
    if not isinstance(bases, Sequence) or not all(isinstance(b, str) for b in bases):
        raise TypeError(f"`mirrors` must be a base URL (a str) or a list of them, got {mirrors!r}")
    if not bases or not all(b.strip() for b in bases):
        raise ValueError(
            f"`mirrors` must name at least one base URL and no empty one, got {mirrors!r}; "
            "pass mirrors=None for the official URLs"
        )
    return [f"{base.strip().rstrip('/')}/{spec.name}/" for base in bases]


def remedy(spec: RemoteDataset, file: FileSpec) -> str:
    """A sentence saying how to replace a damaged copy of ``file``."""
    urls = " or ".join(base + file.name for base in spec.urls)
    return (
        f"Delete it and run `nnjax data fetch {spec.name}` "
        f"(or nnjax.data.fetch({spec.name!r})), or download {urls}"
    )
