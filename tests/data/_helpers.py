"""Helpers for the dataset tests: tiny IDX datasets written independently of nnjax."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path

import numpy as np

from nnjax.data import idx, sources


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of uint8 ``array``, written with ``struct`` (independent of nnjax)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def tiny_dataset(root: Path, n_train: int = 6, n_test: int = 4, seed: int = 0):
    """Writes a tiny MNIST-layout dataset under ``root/tiny`` and returns its spec."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, (n_train,)),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, (n_test,)),
    }
    folder = root / "tiny"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, array in arrays.items():
        raw = idx_bytes(array.astype(np.uint8))
        (folder / name).write_bytes(gzip.compress(raw))
        md5, sha = hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest()
        files.append(sources.FileSpec(name, md5, sha))
    spec = sources.RemoteDataset("tiny", tuple(files), urls=("http://127.0.0.1:9/tiny/",))
    return spec, {k: v.astype(np.uint8) for k, v in arrays.items()}


def copy_dataset(src_root: str, name: str, dest_root: Path) -> Path:
    """Copies ``src_root/name`` into ``dest_root/name`` (files only) and returns it."""
    dest = dest_root / name
    dest.mkdir(parents=True)
    for path in (Path(src_root) / name).glob("*.gz"):
        shutil.copyfile(path, dest / path.name)
    return dest


def deny_reading(monkeypatch, *paths: Path) -> None:
    """Makes opening ``paths`` in :mod:`nnjax.data.idx` fail as ``chmod 000`` would.

    The tests may run as root, for whom ``chmod`` takes nothing away, so the denial is
    simulated on ``open``.
    """
    denied = {os.fspath(p) for p in paths}

    def guarded_open(file, *args, **kwargs):
        if os.fspath(file) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(idx, "open", guarded_open, raising=False)


def deny_listing(monkeypatch, folder: Path) -> None:
    """Makes looking into ``folder`` fail as for a folder without read/search permission."""
    is_file = Path.is_file

    def guarded_is_file(self: Path) -> bool:
        if self.parent == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return is_file(self)

    monkeypatch.setattr(Path, "is_file", guarded_is_file)
