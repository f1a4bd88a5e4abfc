"""A Markov chain: transition matrix, stationary distribution and a sampled path.

Estimates the transition matrix of a three-state weather chain from counts, computes its
stationary distribution (pi P = pi) and compares it with the visit frequencies of a
sampled path.

    python examples/classic/markov.py --steps 10000 --out /tmp/plots
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from _classic_plotting import saved_axes  # examples/classic/_classic_plotting.py

from nnjax import classic

STATES = ("sunny", "cloudy", "rainy")
COUNTS = jnp.array([[70.0, 20.0, 10.0], [30.0, 40.0, 30.0], [20.0, 40.0, 40.0]])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the frequency plot (none if unset)")
    args = parser.parse_args(argv)

    p = classic.transition_matrix(COUNTS)
    pi = classic.stationary_distribution(p)
    path = classic.sample_path(jax.random.key(args.seed), p, 0, args.steps)
    freq = classic.visit_frequencies(path, len(STATES))
    print("state    stationary  visited")
    for name, a, b in zip(STATES, pi.tolist(), freq.tolist()):
        print(f"{name:8s} {a:10.4f} {b:8.4f}")
    gap = float(jnp.max(jnp.abs(pi - freq)))
    print(f"max |pi - visit frequency| over {args.steps} steps: {gap:.4f}")

    if args.out:
        running = jnp.cumsum(jax.nn.one_hot(path, len(STATES)), axis=0)
        running = running / jnp.arange(1, path.shape[0] + 1)[:, None]
        with saved_axes(args.out, "markov.png", (6, 3)) as ax:
            for i, name in enumerate(STATES):
                ax.semilogx(running[:, i], label=name)
                ax.axhline(float(pi[i]), color="gray", ls=":")
            ax.set(xlabel="step", ylabel="visit frequency")
            ax.legend()
    return {"max_gap": gap}


if __name__ == "__main__":
    main()
