"""Where datasets are looked for and downloaded from."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from nnjax.data import fetch, load_fashion_mnist, load_mnist, sources, verify
from nnjax.data.errors import DatasetNotFoundError


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(sources.CACHE_DIR_ENV, str(tmp_path / "c"))
    assert sources.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(sources.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.cache_dir() == tmp_path / "xdg" / "nnjax" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sources.cache_dir() == tmp_path / "home" / ".cache" / "nnjax" / "datasets"


def test_search_order(monkeypatch, tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / "shared"))
    dirs = sources.search_dirs(sources.FASHION_MNIST, tmp_path / "mine")
    assert dirs == [
        tmp_path / "mine",
        tmp_path / "mine" / "fashion-mnist",
        tmp_path / "shared" / "fashion-mnist",
        sources.cache_dir() / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    monkeypatch.delenv(sources.DATA_DIR_ENV)
    assert sources.search_dirs(sources.MNIST) == [sources.cache_dir() / "mnist"]


def test_mirror_urls(monkeypatch):
    assert sources.mirror_urls(sources.MNIST, None)[0].startswith("https://storage.googleapis")
    assert len(sources.mirror_urls(sources.FASHION_MNIST, None)) == 2
    monkeypatch.setenv(sources.MIRROR_ENV, "http://a/, http://b")
    assert sources.mirror_urls(sources.MNIST, None) == ["http://a/mnist/", "http://b/mnist/"]
    assert sources.mirror_urls(sources.MNIST, ["http://c"]) == ["http://c/mnist/"]


def test_remedy_names_command_and_official_url():
    spec = sources.FASHION_MNIST
    text = sources.remedy(spec, spec.files[0])
    assert "nnjax data fetch fashion-mnist" in text
    assert spec.urls[0] + "train-images-idx3-ubyte.gz" in text


@pytest.fixture
def no_download(monkeypatch, isolated_env):
    """Fails the test if anything is downloaded; returns the (empty) cache folder."""

    def refuse(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return isolated_env


def _assert_nothing_cached(cache):
    assert not any(cache.rglob("*")), sorted(cache.rglob("*"))


@pytest.mark.parametrize("env", ["unset", "shared"])
@pytest.mark.parametrize(
    "call",
    [
        lambda d: load_mnist(d),
        lambda d: load_fashion_mnist(d, download=True),
        lambda d: verify("mnist", d),
        lambda d: fetch("mnist", data_dir=d),
    ],
)
def test_missing_data_dir_raises_before_any_download(call, env, tmp_path, no_download, monkeypatch):
    """W1: a typo in data_dir used to load from $NNJAX_DATA_DIR or go to the network."""
    if env == "unset":
        monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    else:  # a valid NNJAX_DATA_DIR must not hide the typo
        (tmp_path / "shared").mkdir()
        monkeypatch.setenv(sources.DATA_DIR_ENV, str(tmp_path / "shared"))
    typo = tmp_path / "no" / "such" / "dir"
    with pytest.raises(DatasetNotFoundError, match=rf"data_dir '{typo}' does not exist"):
        call(typo)
    _assert_nothing_cached(no_download)


def test_data_dir_that_is_a_file_raises(tmp_path, no_download, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    file = tmp_path / "README.md"
    file.write_text("not a folder")
    with pytest.raises(FileNotFoundError, match=rf"data_dir '{file}' is not a folder"):
        load_mnist(file)
    _assert_nothing_cached(no_download)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_env_data_dir_that_is_not_a_folder_raises(kind, tmp_path, no_download, monkeypatch):
    """W2: a mistyped NNJAX_DATA_DIR used to be skipped, and the loader downloaded."""
    value = tmp_path / "nope"
    if kind == "file":
        value.write_text("x")
    monkeypatch.setenv(sources.DATA_DIR_ENV, str(value))
    what = "is not a folder" if kind == "file" else "does not exist"
    with pytest.raises(
        DatasetNotFoundError, match=rf"NNJAX_DATA_DIR is set to '{value}', which {what}"
    ):
        load_fashion_mnist()
    with pytest.raises(DatasetNotFoundError, match="NNJAX_DATA_DIR"):
        verify("fashion-mnist")
    _assert_nothing_cached(no_download)


def test_empty_env_data_dir_is_unset(monkeypatch):
    monkeypatch.setenv(sources.DATA_DIR_ENV, "")
    assert sources.search_dirs(sources.MNIST) == [sources.cache_dir() / "mnist"]


@pytest.mark.parametrize("data_dir", [123, ["/data"], 1.5])
def test_data_dir_must_be_a_path(data_dir, no_download):
    """U16: pathlib's 'expected str, bytes or os.PathLike object, not int'."""
    with pytest.raises(TypeError, match=r"`data_dir` must be a path \(str or os.PathLike\), got"):
        load_mnist(data_dir)
    _assert_nothing_cached(no_download)


@pytest.mark.parametrize(
    ("mirrors", "error", "match"),
    [
        ([], ValueError, r"`mirrors` must name at least one base URL .*got \[\]"),
        ("", ValueError, "`mirrors` must name at least one base URL"),
        (["http://a", " "], ValueError, "no empty one"),
        (5, TypeError, r"`mirrors` must be a base URL \(a str\) or a list of them, got 5"),
        ([5], TypeError, r"`mirrors` must be a base URL .*got \[5\]"),
    ],
)
def test_bad_mirrors_are_named(mirrors, error, match, no_download, monkeypatch):
    """U19: [] gave a not-found error with an empty 'Tried:' list; 5 got 'not iterable'."""
    with pytest.raises(error, match=match):
        sources.mirror_urls(sources.MNIST, mirrors)
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    with pytest.raises(error, match=match):
        load_mnist(mirrors=mirrors)
    with pytest.raises(error, match=match):
        fetch("mnist", mirrors=mirrors)
    _assert_nothing_cached(no_download)


def test_tilde_is_expanded_in_data_dir_and_env(monkeypatch, tmp_path, no_download):
    """S35-E5: '~/data' was taken literally (the cache folder was expanded, these not),
    so a .env file's NNJAX_DATA_DIR=~/data gave 'does not exist'."""
    home = tmp_path / "home"
    (home / "data" / "mnist").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(sources.DATA_DIR_ENV, "~/data")
    assert sources.env_data_dir() == home / "data"
    assert sources.checked_data_dir("~/data") == home / "data"
    dirs = sources.search_dirs(sources.MNIST, "~/data/mnist")
    assert dirs[:2] == [home / "data" / "mnist", home / "data" / "mnist" / "mnist"]


def test_network_guard_fails_a_download_from_the_internet(no_network, tmp_path):
    """The autouse guard of conftest.py: a test that reaches for the network fails."""
    from nnjax.data.download import download_first

    with pytest.raises(AssertionError, match="tests never use the network"):
        download_first(["https://example.com/x.gz"], tmp_path / "x.gz", progress=False)
    assert no_network == ["https://example.com/x.gz"]
    no_network.clear()  # recorded as expected; the teardown check would fail otherwise


def test_loaders_with_shared_data_never_download(data_dir, no_network, monkeypatch):
    """Reading through $NNJAX_DATA_DIR finds every file: nothing is downloaded."""
    monkeypatch.setenv(sources.DATA_DIR_ENV, data_dir)
    for name in ("mnist", "fashion-mnist"):
        assert [r.status for r in verify(name)] == ["ok"] * 4
    assert no_network == []
