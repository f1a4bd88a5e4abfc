"""Plots the activation functions of nnjax.activations and their derivatives.

The derivatives come from ``jax.grad`` (vectorised with ``jax.vmap``), not from
hand-written formulas, as in the course notes' figure of activations and their slopes.

    python examples/activations.py --out runs/activations
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import activations

NAMES = (
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "swish",
    "softplus",
    "heaviside",
    "sign",
)


def derivative(name: str):
    """The elementwise derivative of activation ``name``, via ``jax.grad`` and ``jax.vmap``."""
    return jax.jit(jax.vmap(jax.grad(activations.get(name))))


def tabulate(x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Values and derivatives of every activation in ``NAMES`` at the points ``x``."""
    xs = jnp.asarray(x, jnp.float32)
    return {
        name: (np.asarray(activations.get(name)(xs)), np.asarray(derivative(name)(xs)))
        for name in NAMES
    }


def plot(table, x, path: Path) -> None:
    """Saves a grid of plots, one per activation, value and derivative."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(16, 6), sharex=True)
    for ax, (name, (value, slope)) in zip(axes.flat, table.items()):
        ax.plot(x, value, label="f(x)")
        ax.plot(x, slope, "--", label="f'(x) (jax.grad)")
        ax.set_title(name)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
    axes.flat[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/activations", help="folder for activations.png")
    parser.add_argument("--points", type=int, default=401, help="points on [-5, 5]")
    parser.add_argument("--quick", action="store_true", help="fewer points, for a smoke test")
    args = parser.parse_args(argv)
    x = np.linspace(-5.0, 5.0, 41 if args.quick else args.points)
    table = tabulate(x)
    at = [-2.0, 0.5, 2.0]
    idx = [int(np.argmin(np.abs(x - a))) for a in at]
    print(f"{'activation':<12}" + "".join(f"  f'({x[i]:+.1f})" for i in idx))
    for name, (_, slope) in table.items():
        print(f"{name:<12}" + "".join(f"  {slope[i]:8.4f}" for i in idx))
    os.makedirs(args.out, exist_ok=True)
    path = Path(args.out) / "activations.png"
    plot(table, x, path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
