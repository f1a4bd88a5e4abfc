"""Forward mode (``jax.jvp``) against reverse mode (``jax.vjp``) on a small graph.

The course's computation graph ``c_plus_2 = c + 2``, ``b_plus_c = b + c``,
``a = b_plus_c * c_plus_2``. Forward mode pushes one tangent per input through the
graph (one pass per input: ``∂a/∂b`` then ``∂a/∂c``); reverse mode pulls the output's
cotangent back once and gets every partial in one pass. Both must agree with the
hand-derived partials ``∂a/∂b = c + 2`` and ``∂a/∂c = b + 2c + 2``.

    python examples/autodiff_modes.py --b 2 --c 1
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp


def graph(b: jax.Array, c: jax.Array) -> jax.Array:
    """``a = (b + c) * (c + 2)``."""
    return (b + c) * (c + 2.0)


def forward_mode(b: float, c: float) -> dict[str, float]:
    """Every partial of ``a`` by ``jax.jvp``: one forward pass per input."""
    primals = (jnp.float32(b), jnp.float32(c))
    out = {}
    for name, tangent in (("da/db", (1.0, 0.0)), ("da/dc", (0.0, 1.0))):
        _, da = jax.jvp(graph, primals, tuple(jnp.float32(t) for t in tangent))
        out[name] = float(da)
    return out


def reverse_mode(b: float, c: float) -> dict[str, float]:
    """Every partial of ``a`` by ``jax.vjp``: one backward pass for all inputs."""
    a, pullback = jax.vjp(graph, jnp.float32(b), jnp.float32(c))
    db, dc = pullback(jnp.ones_like(a))
    return {"da/db": float(db), "da/dc": float(dc)}


def by_hand(b: float, c: float) -> dict[str, float]:
    """The partials derived on paper with the chain rule."""
    return {"da/db": c + 2.0, "da/dc": b + 2.0 * c + 2.0}


def main(argv=None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b", type=float, default=2.0)
    parser.add_argument("--c", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; always quick")
    args = parser.parse_args(argv)
    a = float(graph(jnp.float32(args.b), jnp.float32(args.c)))
    print(f"b = {args.b}, c = {args.c}: a = (b + c) * (c + 2) = {a}")
    results = {
        "forward (jax.jvp)": forward_mode(args.b, args.c),
        "reverse (jax.vjp)": reverse_mode(args.b, args.c),
        "by hand": by_hand(args.b, args.c),
    }
    print(f"{'mode':<20}{'da/db':>10}{'da/dc':>10}")
    for mode, partials in results.items():
        print(f"{mode:<20}{partials['da/db']:>10.4f}{partials['da/dc']:>10.4f}")
    return results


if __name__ == "__main__":
    main()
