"""Where datasets are looked for and downloaded from."""

from __future__ import annotations

from pathlib import Path

from nnjax.data import sources


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
