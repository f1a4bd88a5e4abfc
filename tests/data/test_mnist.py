"""MNIST and Fashion-MNIST loading: real files from $NNJAX_DATA_DIR, search order and
damaged files on tiny hand-made datasets."""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from nnjax.data import load_fashion_mnist, load_mnist, mnist, sources
from nnjax.data.errors import (
    CorruptFileError,
    DatasetError,
    DatasetNotFoundError,
    UnreadableFileError,
)

from ._helpers import deny_listing, deny_reading, idx_bytes, tiny_dataset


def _shared_root() -> str:
    root = os.environ.get("NNJAX_DATA_DIR")
    if not root or not os.path.isdir(root):
        pytest.skip("NNJAX_DATA_DIR is not set to the shared datasets")
    return root


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist(_shared_root(), download=False)


@pytest.fixture(scope="module")
def digits28():
    return load_mnist(_shared_root(), download=False)


def _reference_labels(path: str) -> np.ndarray:
    """Labels read with gzip + struct, independently of nnjax."""
    with gzip.open(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049
        return np.frombuffer(f.read(), np.uint8)[:n]


@pytest.mark.parametrize("which", ["fashion", "digits28"])
def test_shapes_and_dtypes(which, request):
    (x, y), (xt, yt) = request.getfixturevalue(which)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert x.dtype == xt.dtype == y.dtype == yt.dtype == np.uint8
    assert x.max() == 255 and x.min() == 0 and set(np.unique(y)) == set(range(10))


def test_fashion_labels_match_reference_and_are_balanced(fashion, data_dir):
    (_, y), (_, yt) = fashion
    folder = os.path.join(data_dir, "fashion-mnist")
    np.testing.assert_array_equal(y, _reference_labels(f"{folder}/train-labels-idx1-ubyte.gz"))
    np.testing.assert_array_equal(yt, _reference_labels(f"{folder}/t10k-labels-idx1-ubyte.gz"))
    assert np.bincount(y).tolist() == [6000] * 10
    assert np.bincount(yt).tolist() == [1000] * 10
    assert y[:5].tolist() == [9, 0, 0, 3, 0]


def test_mnist_published_label_counts(digits28):
    (_, y), (_, yt) = digits28
    assert y[:3].tolist() == [5, 0, 4]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_images_match_reference(digits28, data_dir):
    _, (xt, _) = digits28
    with gzip.open(os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        ref = np.frombuffer(f.read(), np.uint8).reshape(n, rows, cols)
    assert magic == 2051
    np.testing.assert_array_equal(xt, ref)


def test_recompressed_copy_passes(tmp_path, data_dir):
    """Debian re-compresses the files: only the decompressed bytes match."""
    spec = sources.FASHION_MNIST
    file = spec.file("t10k-labels-idx1-ubyte.gz")
    raw = gzip.decompress((Path(data_dir) / spec.name / file.name).read_bytes())
    path = tmp_path / file.name
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
    labels = mnist.verify_file(spec, file, path)
    assert labels.shape == (10000,)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    spec, arrays = tiny_dataset(tmp_path / "root")
    return spec, arrays, tmp_path / "root"


def _assert_loaded(split, arrays):
    (x, y), (xt, yt) = split
    np.testing.assert_array_equal(x, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(xt, arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte.gz"])


@pytest.mark.parametrize("nested", [False, True])
def test_data_dir_is_root_or_dataset_folder(tiny, nested):
    spec, arrays, root = tiny
    folder = root / "tiny" if nested else root
    _assert_loaded(mnist.load_remote(spec, folder, download=False), arrays)


def test_env_data_dir(tiny, monkeypatch):
    spec, arrays, root = tiny
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(root))
    _assert_loaded(mnist.load_remote(spec, download=False), arrays)


def test_cache_then_system_dir(tiny, isolated_env):
    spec, arrays, root = tiny
    file = spec.files[0]
    system = dataclasses.replace(spec, system_dirs=(str(root / "tiny"),))
    assert mnist.locate_file(system, file, None) == root / "tiny" / file.name
    (isolated_env / "tiny").mkdir()
    (isolated_env / "tiny" / file.name).write_bytes((root / "tiny" / file.name).read_bytes())
    assert mnist.locate_file(system, file, None) == isolated_env / "tiny" / file.name
    _assert_loaded(mnist.load_remote(system, download=False), arrays)


def test_data_dir_wins_over_env(tiny, tmp_path, monkeypatch):
    spec, _, root = tiny
    tiny_dataset(tmp_path / "other")
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / "other"))
    assert mnist.locate_file(spec, spec.files[1], root).parent == root / "tiny"
    assert mnist.locate_file(spec, spec.files[1], None).parent == tmp_path / "other" / "tiny"


def test_missing_without_download_lists_folders_and_urls(tiny, tmp_path, isolated_env):
    spec, _, _ = tiny
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        mnist.load_remote(spec, tmp_path / "empty", download=False)
    msg = str(err.value)
    assert str(tmp_path / "empty") in msg and str(isolated_env / "tiny") in msg
    assert "http://127.0.0.1:9/tiny/train-images-idx3-ubyte.gz" in msg


def _rewrite(path, transform):
    path.write_bytes(transform(path.read_bytes()))


@pytest.mark.parametrize(
    ("name", "transform", "reason"),
    [
        (
            "train-labels-idx1-ubyte.gz",
            lambda b: gzip.compress(gzip.decompress(b)[:-1] + b"\x0b"),
            "checksum mismatch",
        ),
        ("t10k-images-idx3-ubyte.gz", lambda b: b[: len(b) // 2], "truncated"),
        (
            "t10k-labels-idx1-ubyte.gz",
            lambda b: gzip.compress(idx_bytes(np.zeros((4, 1, 1), np.uint8))),
            "bad magic",
        ),
        ("train-images-idx3-ubyte.gz", lambda b: b"<html>404</html>", "not gzip"),
    ],
)
def test_damaged_file_on_disk(tiny, name, transform, reason):
    spec, _, root = tiny
    path = root / "tiny" / name
    _rewrite(path, transform)
    with pytest.raises(CorruptFileError) as err:
        mnist.load_remote(spec, root, download=False)
    assert err.value.reason == reason and err.value.path == str(path)
    assert f"{path}: {reason}" in str(err.value)
    assert "nnjax data fetch tiny" in str(err.value)


def test_image_label_count_mismatch(tmp_path):
    spec, _ = tiny_dataset(tmp_path, n_train=6)
    short, _ = tiny_dataset(tmp_path / "short", n_train=5)
    labels = short.files[1]
    (tmp_path / "tiny" / labels.name).write_bytes(
        (tmp_path / "short" / "tiny" / labels.name).read_bytes()
    )
    mixed = dataclasses.replace(spec, files=(spec.files[0], labels, *spec.files[2:]))
    with pytest.raises(CorruptFileError, match=r"\(6, 28, 28\) do not match 5 labels"):
        mnist.load_remote(mixed, tmp_path, download=False)


def test_unreadable_file_is_a_dataset_error_naming_it(tiny, monkeypatch):
    """U21: a bare PermissionError, not a DatasetError, with no remedy."""
    spec, _, root = tiny
    locked = root / "tiny" / "train-labels-idx1-ubyte.gz"
    deny_reading(monkeypatch, locked)
    with pytest.raises(UnreadableFileError) as err:
        mnist.load_remote(spec, root, download=False)
    assert isinstance(err.value, DatasetError) and isinstance(err.value, OSError)
    assert err.value.path == str(locked) and err.value.reason == "unreadable"
    msg = str(err.value)
    assert msg.startswith(f"{locked}: unreadable: Permission denied") and "chmod" in msg
    assert "nnjax data fetch tiny" in msg


def test_unsearchable_folder_is_skipped_and_noted(tiny, tmp_path, monkeypatch):
    """U21: a folder without permission early in the search order aborted the search."""
    spec, arrays, root = tiny
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    deny_listing(monkeypatch, blocked)
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(root))  # the files are found after it
    _assert_loaded(mnist.load_remote(spec, blocked, download=False), arrays)
    monkeypatch.delenv(sources.DATA_DIR_ENV)
    with pytest.raises(DatasetNotFoundError) as err:
        mnist.load_remote(spec, blocked, download=False)
    assert f"{blocked} (could not be searched: Permission denied)" in str(err.value)


def test_missing_file_without_download_says_what_to_do(tiny, tmp_path, isolated_env):
    """S35-E6: the message listed folders and URLs but not how to put the file right."""
    spec, _, root = tiny
    (root / "tiny" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        mnist.load_remote(spec, root, download=False)
    msg = str(err.value)
    assert msg.startswith("t10k-labels-idx1-ubyte.gz of tiny not found; looked in:")
    assert f"  {root}\n" in msg and f"  {root / 'tiny'}\n" in msg
    assert "NNJAX_DATA_DIR to a folder holding tiny/t10k-labels-idx1-ubyte.gz" in msg
    assert "`nnjax data fetch tiny`" in msg and "download=True" in msg
    assert "http://127.0.0.1:9/tiny/t10k-labels-idx1-ubyte.gz" in msg


@pytest.mark.parametrize("download", ["False", 0, None])
def test_download_must_be_a_bool(tiny, download, isolated_env):
    """S35-E2: download="False" is truthy, so a missing file went to the network."""
    spec, _, root = tiny
    (root / "tiny" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(TypeError, match=r"load_tiny: `download` must be a bool .*, got"):
        mnist.load_remote(spec, root, download=download)
    with pytest.raises(TypeError, match=r"ensure_file: `download` must be a bool"):
        mnist.ensure_file(spec, spec.files[3], root, download=download)
    assert not any(isolated_env.rglob("*"))


@pytest.mark.parametrize("progress", ["no", 0, 1.0])
def test_progress_must_be_a_bool_or_none(tiny, progress, isolated_env, capfd):
    """Audit: progress="no" (truthy) showed a bar, progress=0 printed the download line."""
    spec, _, root = tiny
    (root / "tiny" / "t10k-labels-idx1-ubyte.gz").unlink()
    match = r"`progress` must be a bool \(True or False\) or None, got " + repr(progress)
    with pytest.raises(TypeError, match=r"^load_tiny: " + match):
        mnist.load_remote(spec, root, progress=progress)
    with pytest.raises(TypeError, match=r"^ensure_file: " + match):
        mnist.ensure_file(spec, spec.files[3], root, progress=progress)
    assert not any(isolated_env.rglob("*")) and capfd.readouterr().err == ""


@pytest.mark.parametrize("progress", [None, False, True, np.False_])
def test_bools_and_none_are_progress_values(tiny, progress):
    spec, arrays, root = tiny
    _assert_loaded(mnist.load_remote(spec, root, progress=progress), arrays)
