"""Reading compiled programs' text in the op tests (test helper, private)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest


def bfloat16_dot_computations(hlo: str) -> int:
    """Computations of an HLO text whose two parameters are bfloat16 and that hold a dot."""
    headers, dots = [], []
    for line in hlo.splitlines():
        if line.endswith("{") and not line.startswith(" "):  # a computation's header
            headers.append(line)
            dots.append(False)
        elif " dot(" in line and dots:
            dots[-1] = True
    return sum(d and h.split("->")[0].count("bf16[") == 2 for h, d in zip(headers, dots))


def skip_without_ynn_matmuls() -> None:
    """Skips the calling test where this jaxlib's XLA:CPU has no YNNPACK bfloat16 matmuls."""
    a, b = jnp.ones((64, 96), jnp.bfloat16), jnp.ones((96, 64), jnp.bfloat16)
    plain = jax.jit(lambda a, b: jax.lax.dot(a, b, preferred_element_type=jnp.float32))
    if "__ynn" not in plain.lower(a, b).compile().as_text():
        pytest.skip("this jaxlib's XLA:CPU has no YNNPACK matmuls")
