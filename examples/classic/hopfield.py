"""Hopfield network: recall from noisy copies, and the capacity limit (~0.14 N).

Stores P random ±1 patterns in N units, flips a fraction of each pattern's bits, recalls
by asynchronous updates and reports the mean overlap and the fraction recalled exactly,
for growing P. Recall is nearly perfect well below P = 0.14 N (at N = 100: every pattern
up to P = 7, 90% at P = 10) and degrades past it.

    python examples/classic/hopfield.py --units 100 --out /tmp/plots
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from _classic_plotting import saved_axes  # examples/classic/_classic_plotting.py

from nnjax import classic


def recall_quality(key: jax.Array, units: int, patterns: int, noise: float, sweeps: int):
    """(mean overlap, fraction recalled exactly) for ``patterns`` stored patterns."""
    k1, k2, k3 = jax.random.split(key, 3)
    xi = jnp.where(jax.random.bernoulli(k1, 0.5, (patterns, units)), 1.0, -1.0)
    cue = jnp.where(jax.random.bernoulli(k2, noise, xi.shape), -xi, xi)
    out = classic.hopfield_recall(classic.hopfield_store(xi), cue, steps=sweeps, key=k3)
    m = classic.overlap(out, xi)
    return float(jnp.mean(m)), float(jnp.mean(m == 1.0))


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--max-ratio", type=float, default=0.3, help="largest P / N")
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--noise", type=float, default=0.1, help="fraction of bits flipped")
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the capacity plot (none if unset)")
    args = parser.parse_args(argv)

    n = args.units
    counts = sorted(
        {max(1, round(r * n)) for r in jnp.linspace(0.02, args.max_ratio, args.points).tolist()}
    )
    print(f"N = {n} units, {args.noise:.0%} of bits flipped; capacity ≈ 0.14 N = {0.14 * n:.0f}")
    print("   P    P/N  overlap  exact")
    overlaps, exact = {}, {}
    for p in counts:
        overlaps[p], exact[p] = recall_quality(
            jax.random.fold_in(jax.random.key(args.seed), p), n, p, args.noise, args.sweeps
        )
        print(f"{p:4d}  {p / n:5.2f}  {overlaps[p]:7.3f}  {exact[p]:5.2f}")

    if args.out:
        with saved_axes(args.out, "hopfield_capacity.png", (5, 3)) as ax:
            ax.plot([p / n for p in counts], list(overlaps.values()), "o-", label="mean overlap")
            ax.plot([p / n for p in counts], list(exact.values()), "s-", label="recalled exactly")
            ax.axvline(0.14, color="gray", ls="--", label="0.14 N")
            ax.set(xlabel="patterns / units", ylim=(0, 1.05))
            ax.legend()
    return overlaps


if __name__ == "__main__":
    main()
