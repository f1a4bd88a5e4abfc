"""Strict test settings for the whole suite.

* four fake CPU devices, so sharding code runs on CPU (set before JAX is imported);
* ``jax_numpy_rank_promotion="raise"``: no implicit broadcasting across ranks;
* datasets come from ``$NNJAX_DATA_DIR`` (``../shared/data`` in CI); tests that need
  one skip with a note when it is absent. No test touches the network.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
    """A fixed PRNG key."""
    return jax.random.key(0)


@pytest.fixture
def data_dir():
    """The shared dataset folder, or skip when it is not there."""
    path = os.environ.get("NNJAX_DATA_DIR")
    if not path or not os.path.isdir(path):
        pytest.skip("NNJAX_DATA_DIR is not set to the shared datasets")
    return path
