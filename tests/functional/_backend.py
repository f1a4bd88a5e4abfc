"""The backend conditions of the op tests, named once (test helper, private).

The op tests run unchanged on CPU, GPU and TPU. What only exists on XLA:CPU is skipped
elsewhere through :data:`requires_library_programs`; a test that needs a mesh of
several devices is marked ``@pytest.mark.devices(n)`` (``tests/conftest.py``).
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
