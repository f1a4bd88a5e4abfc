"""The backend conditions of the op tests, named once (test helper, private).

The op tests run unchanged on CPU, GPU and TPU. What only exists on XLA:CPU is skipped
elsewhere through :data:`requires_library_programs`, and a test that needs a mesh of
several devices through :func:`requires_devices` (``tests/conftest.py`` gives the CPU
four fake devices; one GPU is one device).
"""

from __future__ import annotations

import jax
import pytest

ON_CPU = jax.default_backend() == "cpu"
"""Whether JAX's default backend is XLA:CPU."""

requires_library_programs = pytest.mark.skipif(
    not ON_CPU,
    reason="library programs are XLA:CPU's: off the CPU `_conv_compiler.jit` is plain "
    "`jax.jit` (no compiler options, no library context) and bfloat16 rounds by XLA's convert",
)
"""Skips a test of library programs (``nnjax.functional._conv_compiler.jit``) off the CPU."""


def requires_devices(count: int) -> pytest.MarkDecorator:
    """Skips the test where JAX has fewer than ``count`` devices (a mesh of ``count``)."""
    have = jax.device_count()
    return pytest.mark.skipif(
        have < count, reason=f"a mesh of {count} devices; JAX has {have} device(s) here"
    )
