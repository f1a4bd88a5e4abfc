"""Datasets, download/verify/cache, scaling and batching (host side, NumPy only).

Loaders return ``((x_train, y_train), (x_test, y_test))`` like ``keras.datasets``:

* :func:`load_fashion_mnist`, :func:`load_mnist`: uint8 images ``(N, 28, 28)`` and
  uint8 labels, found on disk or downloaded (atomically, checksum-verified);
* :func:`load_digits`: scikit-learn's bundled 8x8 digits (offline);
* synthetic sets: :func:`logic_gate`, :func:`xor`, :func:`adding_problem`,
  :func:`sine_sequences`, :func:`two_moons`, :func:`blobs`.

Plus :class:`MinMaxScaler`, :class:`StandardScaler`, the seedable iterator
:func:`batches` and a registry (:func:`available_datasets`, :func:`dataset_info`,
:func:`load`, :func:`verify`, :func:`fetch`) for the ``nnjax data`` command.
"""

from nnjax.data.batching import batches, num_batches, permutation
from nnjax.data.digits import load_digits
from nnjax.data.errors import (
    CorruptFileError,
    DatasetError,
    DatasetNotFoundError,
    UnreadableFileError,
)
from nnjax.data.idx import parse_idx, read_idx_gz
from nnjax.data.mnist import FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist
from nnjax.data.registry import (
    DatasetInfo,
    FileReport,
    available_datasets,
    dataset_info,
    fetch,
    load,
    verify,
)
from nnjax.data.scalers import MinMaxScaler, StandardScaler
from nnjax.data.sources import cache_dir
from nnjax.data.synthetic import (
    LOGIC_GATES,
    adding_problem,
    blobs,
    logic_gate,
    sine_sequences,
    two_moons,
    xor,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "LOGIC_GATES",
    "CorruptFileError",
    "DatasetError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "FileReport",
    "MinMaxScaler",
    "StandardScaler",
    "UnreadableFileError",
    "adding_problem",
    "available_datasets",
    "batches",
    "blobs",
    "cache_dir",
    "dataset_info",
    "fetch",
    "load",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "logic_gate",
    "num_batches",
    "parse_idx",
    "permutation",
    "read_idx_gz",
    "sine_sequences",
    "two_moons",
    "verify",
    "xor",
]
