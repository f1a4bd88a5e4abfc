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


def on_split_batch(fn, replicated, batch) -> tuple[str, object]:
    """``fn(replicated, batch)`` compiled as ``fit`` compiles, ``batch`` split over 2 devices.

    Returns the compiled program's text and its result.
    """
    from jax.sharding import AxisType, NamedSharding, PartitionSpec

    from nnjax.functional import _conv_compiler

    mesh = jax.make_mesh((2,), ("batch",), axis_types=(AxisType.Auto,))
    batch = jax.device_put(batch, NamedSharding(mesh, PartitionSpec("batch")))
    replicated = jax.device_put(replicated, NamedSharding(mesh, PartitionSpec()))
    step = _conv_compiler.jit(fn)
    return step.lower(replicated, batch).compile().as_text(), step(replicated, batch)
