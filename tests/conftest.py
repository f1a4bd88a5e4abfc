"""Strict test settings for the whole suite.

* four fake CPU devices, so sharding code runs on CPU (set before JAX is imported);
* ``jax_numpy_rank_promotion="raise"``: no implicit broadcasting across ranks;
* off the CPU, ``jax_default_matmul_precision="highest"``: the tests compare float32
  numerics with float64 and PyTorch references, and the default precision of float32
  matmuls and convolutions is TF32 on a GPU (errors near 1e-3 on an H200;
  ``NVIDIA_TF32_OVERRIDE=0`` does not reach XLA's own GEMM fusions) and bfloat16
  passes on a TPU: a speed choice for users to make, not the library's numerics. The
  CPU keeps JAX's default (XLA:CPU computes float32 dots in float32);
* two markers keep the suite portable to a GPU or TPU: ``@pytest.mark.devices(n)``
  skips a test that needs a mesh of ``n`` devices where JAX has fewer (one GPU is one
  device), and ``@pytest.mark.xla_cpu`` one that checks XLA:CPU's own behaviour (its
  bfloat16 emulation, its host memory) on any other backend;
* one XLA compilation cache shared by the run's processes, in a fresh folder removed at
  the end (``_share_compiled_programs``): tests that compile the same program from new
  closures load it instead of compiling it again;
* datasets come from ``$NNJAX_DATA_DIR`` (``../shared/data`` in CI); tests that need
  one skip with a note when it is absent. No test touches the network: downloads
  (``urllib.request.urlopen``) to any host but this machine fail the test.
"""

import contextlib
import glob
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")


def _share_compiled_programs() -> str | None:
    """One XLA compilation cache for the run: its test processes, and what they launch.

    Many tests compile the same small programs (a fit step of the same MLP, from a new
    closure each time, which JAX's in-memory caches do not share); a persistent cache in
    a fresh folder lets the second of them load the first's executable: the default run
    took 14% less time in ``tests/train``. The controller process creates the folder
    (``pytest-xdist``'s workers and the CLI's subprocesses inherit the variables) and
    removes it at the end, or a later run does when this one was killed; a
    ``JAX_COMPILATION_CACHE_DIR`` set by you is left alone.
    Returns the folder this process created, if it did.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return None
    _remove_orphaned_caches()
    folder = tempfile.mkdtemp(prefix=f"nnjax-tests-xla-{os.getpid()}-")
    os.environ.update(
        {
            "JAX_COMPILATION_CACHE_DIR": folder,
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        }
    )
    return folder


def _remove_orphaned_caches() -> None:
    """Removes the caches of runs that were killed (their process is gone)."""
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), "nnjax-tests-xla-*-*")):
        pid = os.path.basename(folder).split("-")[3:4]
        try:
            os.kill(int(pid[0]), 0)
        except ProcessLookupError:  # its run was killed before removing it
            shutil.rmtree(folder, ignore_errors=True)
        except (IndexError, ValueError, OSError):  # not ours to judge (another user's)
            continue


_CREATED_CACHE = _share_compiled_programs()

import jax  # noqa: E402 (the cache variables are set before JAX reads them)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")


def pytest_configure(config: pytest.Config) -> None:
    """Registers the backend markers (``--strict-markers`` refuses unknown ones)."""
    config.addinivalue_line(
        "markers", "devices(n): needs a mesh of n JAX devices; skipped where JAX has fewer"
    )
    config.addinivalue_line(
        "markers", "xla_cpu: checks XLA:CPU's own behaviour; skipped on other backends"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """The process that created the compilation cache removes it at the end."""
    if _CREATED_CACHE is not None:
        shutil.rmtree(_CREATED_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skips what this backend cannot run: too few devices, or not XLA:CPU."""
    have, backend = jax.device_count(), jax.default_backend()
    for item in items:
        for mark in item.iter_markers("devices"):
            (count,) = mark.args
            if have < count:
                reason = f"a mesh of {count} devices; JAX has {have} device(s) here"
                item.add_marker(pytest.mark.skip(reason=reason))
        if backend != "cpu" and item.get_closest_marker("xla_cpu") is not None:
            item.add_marker(pytest.mark.skip(reason=f"XLA:CPU's behaviour; this is {backend}"))


@pytest.fixture
def key():
    """A fixed PRNG key."""
    return jax.random.key(0)


@pytest.fixture
def x64() -> Iterator[None]:
    """``jax_enable_x64`` on for the test only, restored even when it fails."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


class _Unoptimized:
    """Whether this process may hold programs compiled under ``fast_compiles``."""

    held = False


@pytest.fixture
def fast_compiles() -> Iterator[None]:
    """Compiles with most XLA optimizations off for the duration of one test.

    For tests of examples, which check results and compilations, not speed: XLA
    compiles several times faster. The flag is not part of the keys of JAX's and
    nnjax's in-memory caches, so the first test after them that does not ask for it
    starts from emptied caches (``_optimized_programs``): it would otherwise run the
    programs compiled here, unoptimized. A run of such tests (the docstring examples)
    shares its programs and empties the caches once.
    """
    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    _Unoptimized.held = True
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture(autouse=True)
def _optimized_programs(request: pytest.FixtureRequest) -> None:
    """Empties the compile caches before a test that follows ``fast_compiles`` tests."""
    if _Unoptimized.held and "fast_compiles" not in request.fixturenames:
        _forget_compiled_programs()
        _Unoptimized.held = False


def _forget_compiled_programs() -> None:
    from nnjax.functional import _eager
    from nnjax.train import clear_caches

    jax.clear_caches()
    clear_caches()
    _eager._program.cache_clear()


class _Compiles(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.names.append(message.split(" with ")[0])


@contextlib.contextmanager
def _logged_compiles():
    handler = _Compiles()
    loggers = [logging.getLogger(n) for n in ("jax._src.interpreters.pxla", "jax._src.dispatch")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield handler.names
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture
def logged_compiles():
    """A context manager that lists the programs JAX compiles inside it.

    ``with logged_compiles() as names:`` collects ``"Compiling jit(f)"`` for each
    compilation (``jax_log_compiles``), e.g. to assert that a second call compiles none.
    """
    return _logged_compiles


@pytest.fixture
def data_dir():
    """The shared dataset folder, or skip when it is not there."""
    path = os.environ.get("NNJAX_DATA_DIR")
    if not path or not os.path.isdir(path):
        pytest.skip("NNJAX_DATA_DIR is not set to the shared datasets")
    return path


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
