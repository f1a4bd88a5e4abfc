"""Fixtures for the dataset tests: an isolated cache, a local HTTP server, tiny IDX files.

No test here touches the network: downloads go to a ``http.server`` on 127.0.0.1 with
an ephemeral port, serving files copied into a temporary folder.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nnjax.data import sources


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
