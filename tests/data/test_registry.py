"""The dataset registry: names, info, load, verify and fetch."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from nnjax.data import available_datasets, dataset_info, fetch, load, sources, verify

from ._helpers import deny_reading


def test_names_and_info():
    names = available_datasets()
    assert {"fashion-mnist", "mnist", "digits", "xor", "adding", "sine"} <= set(names)
    assert dataset_info("fashion_mnist") == dataset_info("Fashion-MNIST")
    info = dataset_info("mnist")
    assert info.needs_download and info.num_classes == 10 and info.input_shape == (28, 28)
    assert info.files == tuple(f.name for f in sources.MNIST.files)
    assert not dataset_info("digits").needs_download and dataset_info("digits").requires
    assert dataset_info("adding").task == "regression"
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; available: fashion-mnist"):
        dataset_info("cifar")


@pytest.mark.parametrize(
    "name", [n for n in available_datasets() if n not in ("mnist", "fashion-mnist", "digits")]
)
def test_offline_datasets_load_with_declared_shapes(name):
    info = dataset_info(name)
    (x, y), (xt, yt) = load(name)
    assert x.shape[1:] == xt.shape[1:] == info.input_shape
    assert len(x) == len(y) and len(xt) == len(yt)
    if info.num_classes is not None:
        assert set(np.unique(y).tolist()) == set(range(info.num_classes))
    assert verify(name) == [] and fetch(name) == []


def test_verify_shared_copy(data_dir):
    reports = verify("mnist", data_dir)
    assert [r.name for r in reports] == [f.name for f in sources.MNIST.files]
    assert all(r.ok and r.path.is_file() for r in reports), reports


def test_verify_reports_missing_and_damaged(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\0\0\x08\x01\0\0\x27\x10" + bytes(10000))
    )
    reports = {r.name: r for r in verify("mnist", tmp_path)}
    assert reports["train-images-idx3-ubyte.gz"].status == "missing"
    assert str(folder) in reports["train-images-idx3-ubyte.gz"].detail
    assert reports["train-labels-idx1-ubyte.gz"].status == "not gzip"
    bad = reports["t10k-labels-idx1-ubyte.gz"]
    assert bad.status == "checksum mismatch" and not bad.ok and str(folder) in bad.detail


def test_load_passes_data_dir_and_options(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load("fashion_mnist", tmp_path, download=False)


@pytest.mark.parametrize(
    "call",
    [
        lambda: dataset_info(None),
        lambda: verify(None),
        lambda: load(3),
        lambda: fetch(["mnist"]),
    ],
)
def test_name_must_be_a_string(call):
    """U14: used to be AttributeError: 'NoneType' object has no attribute 'lower'."""
    with pytest.raises(TypeError, match=r"`name` must be a dataset name \(a str\) .*, got"):
        call()


@pytest.mark.parametrize(
    ("name", "kwargs", "hint"),
    [
        ("xor", {"bipolar": True}, r"xor\(\) or logic_gate"),
        ("moons", {"seed": 3}, r"two_moons\(\.\.\.\)"),
        ("adding", {"seq_len": 10, "seed": 1}, r"adding_problem\(\.\.\.\)"),
    ],
)
def test_synthetic_sets_take_no_keyword_arguments(name, kwargs, hint):
    """U15: the error named a private helper or clashed with the fixed seeds."""
    with pytest.raises(TypeError, match=rf"load: '{name}' takes no keyword arguments, got "):
        load(name, **kwargs)
    with pytest.raises(TypeError, match=rf"call nnjax\.data\.{hint}"):
        load(name, **kwargs)


def test_digits_options_pass_through():
    pytest.importorskip("sklearn.datasets")
    (x, _), (xt, _) = load("digits", test_fraction=0.5, seed=2)
    assert len(x) + len(xt) == 1797 and abs(len(x) - len(xt)) <= 1


def test_verify_reports_an_unreadable_file(tmp_path, monkeypatch):
    """W3: verify raised PermissionError instead of reporting the file (and the others)."""
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    folder = tmp_path / "mnist"
    folder.mkdir()
    locked = folder / "train-labels-idx1-ubyte.gz"
    locked.write_bytes(b"anything")
    deny_reading(monkeypatch, locked)
    reports = {r.name: r for r in verify("mnist", tmp_path)}
    assert len(reports) == 4
    bad = reports[locked.name]
    assert bad.status == "unreadable" and not bad.ok and bad.path == locked
    assert f"{locked}: unreadable: Permission denied" in bad.detail
    assert reports["train-images-idx3-ubyte.gz"].status == "missing"


@pytest.mark.parametrize("name", ["blobs", "moons"])
def test_synthetic_train_and_test_come_from_one_distribution(name):
    """S35-W6: load("blobs") drew the test set with another seed, so its three clusters
    sat at other random centres than the training clusters of the same label."""
    (x, y), (xt, yt) = load(name)
    assert len(x) == 1000 and len(xt) == 500
    for label in np.unique(y):
        train_mean, test_mean = x[y == label].mean(axis=0), xt[yt == label].mean(axis=0)
        np.testing.assert_allclose(train_mean, test_mean, atol=0.3)


@pytest.mark.parametrize("progress", ["no", 0])
def test_fetch_progress_must_be_a_bool_or_none(progress, tmp_path, monkeypatch, isolated_env):
    """Audit: fetch passed `progress` on unchecked ("no" is truthy: a bar)."""
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    match = r"^fetch: `progress` must be a bool \(True or False\) or None, got " + repr(progress)
    with pytest.raises(TypeError, match=match):
        fetch("mnist", mirrors=tmp_path.as_uri(), progress=progress)
    assert not any(isolated_env.rglob("*"))
