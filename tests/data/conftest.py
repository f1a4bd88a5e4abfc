"""Fixtures for the dataset tests: an isolated cache, a local HTTP server, tiny IDX files.

No test here touches the network: downloads go to a ``http.server`` on 127.0.0.1 with
an ephemeral port, serving files copied into a temporary folder.
"""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nnjax.data import sources

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch) -> Iterator[list[str]]:
    """Fails any test that downloads from a host other than this machine.

    Downloads (``urllib.request.urlopen``, which :mod:`nnjax.data.download` uses) may go
    to ``file://`` URLs and to the local test servers only; anything else raises an
    ``AssertionError`` (which the loaders do not catch) and is recorded, so the test
    fails at teardown even if something swallowed the error. Yields the record.
    """
    attempts: list[str] = []
    urlopen = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        full = url if isinstance(url, str) else url.full_url
        parts = urllib.parse.urlsplit(full)
        if parts.scheme != "file" and parts.hostname not in _LOCAL_HOSTS:
            attempts.append(full)
            raise AssertionError(f"a test tried to download {full}; tests never use the network")
        return urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    yield attempts
    assert not attempts, f"downloads attempted: {attempts}"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch) -> Path:
    """Points the download cache at an empty temporary folder; no mirror override.

    ``NNJAX_DATA_DIR`` is kept: the ``data_dir`` fixture reads it. Tests that check the
    search order set or unset it themselves.
    """
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(sources.CACHE_DIR_ENV, str(cache))
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)
    return cache


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """A factory: ``serve(folder)`` serves ``folder`` and returns its base URL."""
    servers = []

    def start(root: Path, handler=_QuietHandler) -> str:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
