"""Downloads from a local HTTP server on 127.0.0.1: atomic, verified, with fallbacks."""

from __future__ import annotations

import gzip
import http.server
import os
import socket
import stat
import time

import numpy as np
import pytest

from nnjax.data import fetch, load_mnist, mnist, sources
from nnjax.data.download import download_file, download_first
from nnjax.data.errors import CorruptFileError, DatasetNotFoundError

from ._helpers import copy_dataset, idx_bytes, tiny_dataset


@pytest.fixture
def tiny_remote(tmp_path, monkeypatch):
    """A tiny dataset's spec, with its files nowhere on the search path."""
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    spec, _ = tiny_dataset(tmp_path / "elsewhere")
    return spec


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def site(tmp_path, serve):
    root = tmp_path / "site"
    root.mkdir()
    (root / "a.bin").write_bytes(b"payload" * 1000)
    return root, serve(root)


@pytest.mark.parametrize("progress", [False, True])
def test_download_file(site, tmp_path, progress):
    _, url = site
    dest = tmp_path / "out" / "a.bin"
    assert download_file(f"{url}/a.bin", dest, progress=progress) == dest
    assert dest.read_bytes() == b"payload" * 1000
    assert _leftovers(dest.parent) == ["a.bin"]


def test_rejected_download_leaves_nothing(site, tmp_path):
    _, url = site
    dest = tmp_path / "out" / "a.bin"

    def reject(path):
        assert path != dest and path.parent == dest.parent and path.read_bytes()
        raise CorruptFileError(path, "checksum mismatch", "rejected")

    with pytest.raises(CorruptFileError):
        download_file(f"{url}/a.bin", dest, verify=reject)
    assert _leftovers(dest.parent) == []


def test_fallback_to_second_mirror(site, tmp_path):
    _, url = site
    dest = tmp_path / "a.bin"
    download_first([f"{url}/missing.bin", f"{url}/a.bin"], dest)
    assert dest.read_bytes() == b"payload" * 1000


def test_all_mirrors_fail_lists_urls_and_folders(site, tmp_path):
    _, url = site
    dest = tmp_path / "out" / "a.bin"
    urls = [f"{url}/missing.bin", "http://127.0.0.1:9/nothing.bin"]
    with pytest.raises(DatasetNotFoundError) as err:
        download_first(urls, dest, searched=[tmp_path / "here"])
    msg = str(err.value)
    assert all(u in msg for u in urls) and "404" in msg and str(tmp_path / "here") in msg
    assert _leftovers(dest.parent) == []


class _ShortBody(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, then closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def test_connection_dropped_mid_file(serve, tmp_path):
    url = serve(tmp_path, handler=lambda *a, directory=None: _ShortBody(*a))
    dest = tmp_path / "out" / "f.gz"
    with pytest.raises(DatasetNotFoundError, match=r"f\.gz was not found"):
        download_first([f"{url}/f.gz"], dest)
    assert _leftovers(dest.parent) == []


@pytest.fixture(scope="module")
def mnist_site(tmp_path_factory):
    root = os.environ.get("NNJAX_DATA_DIR")
    if not root or not os.path.isdir(root):
        pytest.skip("NNJAX_DATA_DIR is not set to the shared datasets")
    site = tmp_path_factory.mktemp("mirror")
    copy_dataset(root, "mnist", site)
    return site


def test_load_mnist_downloads_into_cache(mnist_site, serve, isolated_env, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV)
    (x, y), (_, yt) = load_mnist(mirrors=serve(mnist_site))
    assert x.shape == (60000, 28, 28) and yt.shape == (10000,) and y[:3].tolist() == [5, 0, 4]
    cached = isolated_env / "mnist"
    assert _leftovers(cached) == sorted(f.name for f in sources.MNIST.files)
    for f in sources.MNIST.files:
        assert (cached / f.name).read_bytes() == (mnist_site / "mnist" / f.name).read_bytes()
        # From now on the cached copy is found, so nothing is downloaded again.
        assert mnist.locate_file(sources.MNIST, f, None) == cached / f.name


def test_mirror_env_var(mnist_site, serve, isolated_env, monkeypatch):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(sources.MIRROR_ENV, "http://127.0.0.1:9, " + serve(mnist_site))
    file = sources.MNIST.file("t10k-labels-idx1-ubyte.gz")
    path = mnist.ensure_file(sources.MNIST, file)
    assert path == isolated_env / "mnist" / file.name


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: gzip.compress(gzip.decompress(b)[:-1] + b"\x0b"), "checksum mismatch"),
        (lambda b: b[:-100], "truncated"),
        (lambda b: b"<html>not found</html>", "not gzip"),
    ],
)
def test_damaged_download_never_lands(
    mnist_site, tmp_path, serve, isolated_env, monkeypatch, damage, reason
):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    file = sources.MNIST.file("t10k-labels-idx1-ubyte.gz")
    site = tmp_path / "site" / "mnist"
    site.mkdir(parents=True)
    (site / file.name).write_bytes(damage((mnist_site / "mnist" / file.name).read_bytes()))
    with pytest.raises(DatasetNotFoundError) as err:
        mnist.ensure_file(sources.MNIST, file, mirrors=serve(tmp_path / "site"))
    assert reason in str(err.value) and "could not be downloaded" in str(err.value)
    assert ".part" not in str(err.value) and "Delete it" not in str(err.value)  # U18
    assert _leftovers(isolated_env / "mnist") == []


def test_fetch_verifies_existing_copy(monkeypatch, isolated_env):
    monkeypatch.delenv(sources.DATA_DIR_ENV, raising=False)
    folder = isolated_env / "mnist"
    folder.mkdir()
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((1, 28, 28), np.uint8))))
    with pytest.raises(CorruptFileError, match="checksum mismatch") as err:
        fetch("mnist", mirrors="http://127.0.0.1:9")
    assert err.value.path == str(path)


def test_rejected_download_names_the_url_not_the_temporary_file(site, tmp_path):
    """U18: the error named a deleted .part file and said to delete it and fetch again."""
    _, url = site
    dest = tmp_path / "out" / "a.bin"

    def reject(path):
        raise CorruptFileError(path, "not gzip", "bad header", "Delete it and run `nnjax ...`")

    with pytest.raises(CorruptFileError) as err:
        download_file(f"{url}/a.bin", dest, verify=reject, progress=False)
    msg = str(err.value)
    assert err.value.path == f"{url}/a.bin" and err.value.reason == "not gzip"
    assert msg.startswith(f"{url}/a.bin: not gzip: the server sent something that is not a good")
    assert ".part" not in msg and "Delete it" not in msg
    with pytest.raises(DatasetNotFoundError) as err:
        download_first([f"{url}/a.bin"], dest, verify=reject, progress=False)
    assert f"  {url}/a.bin: not gzip: the server sent" in str(err.value)
    assert ".part" not in str(err.value) and "Delete it" not in str(err.value)


@pytest.fixture
def stalled_url():
    """A server that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_stalled_server_is_bounded_by_timeout_per_attempt(
    tiny_remote, stalled_url, isolated_env, capfd
):
    """U20: a stalled server made the loader wait 60 s per URL, silently."""
    spec = tiny_remote
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match="timed out"):
        mnist.load_remote(spec, mirrors=[stalled_url, stalled_url + "/"], timeout=0.3)
    assert time.monotonic() - start < 15
    err = capfd.readouterr().err
    dest = isolated_env / "tiny" / spec.files[0].name
    line = f"downloading {stalled_url}/tiny/{spec.files[0].name} -> {dest}"
    assert err.count(line) == 2 and err.count("downloading ") == 2  # once per attempt
    assert _leftovers(isolated_env / "tiny") == []


def test_no_download_line_when_progress_is_off(site, tmp_path, capfd):
    _, url = site
    download_file(f"{url}/a.bin", tmp_path / "a.bin", progress=False)
    assert "downloading" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: load_mnist(timeout=0), ValueError, "load_mnist: `timeout` must be > 0, got 0"),
        (lambda: load_mnist(timeout=float("inf")), ValueError, "`timeout` must be finite"),
        (lambda: load_mnist(timeout="60"), TypeError, "`timeout` must be a real number"),
        (lambda: fetch("mnist", timeout=-1), ValueError, "fetch: `timeout` must be > 0, got -1"),
    ],
)
def test_bad_timeout_fails_before_searching(call, error, match, isolated_env):
    with pytest.raises(error, match=match):
        call()
    assert _leftovers(isolated_env) == []


@pytest.fixture
def set_umask():
    """``set_umask(mask)`` sets the process umask for the test; the old one comes back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=oct)
def test_downloaded_file_gets_the_mode_the_umask_gives(site, tmp_path, set_umask, mask):
    """Audit: tempfile.mkstemp made every download 0600 whatever the umask, so a cache
    shared by a team ($NNJAX_CACHE_DIR) was unreadable to everyone else."""
    root, url = site
    set_umask(mask)
    http = download_file(f"{url}/a.bin", tmp_path / "http" / "a.bin", progress=False)
    local = download_file((root / "a.bin").as_uri(), tmp_path / "file" / "a.bin", progress=False)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (http, local, plain)}
    assert modes == {0o666 & ~mask}
    assert _leftovers(http.parent) == ["a.bin"] and _leftovers(local.parent) == ["a.bin"]
