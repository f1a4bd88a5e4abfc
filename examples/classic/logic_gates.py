"""Truth tables of hand-weighted logic gates, and a 2-2-1 network that learns XOR.

python examples/classic/logic_gates.py --steps 1000 --out /tmp/plots
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from _classic_plotting import saved_axes  # examples/classic/_classic_plotting.py

from nnjax import classic


def print_table(kind: str) -> None:
    """Prints OR, AND, NAND and the two-layer XOR for every input row."""
    x = classic.truth_table_inputs(2, kind=kind)
    outputs = {name: classic.gate(name, x, kind=kind) for name in ("or", "and", "nand")}
    outputs["xor"] = classic.xor_gate(x, kind=kind)
    print(f"{kind + ' units:':15s}  x1   x2 | " + "  ".join(f"{n:>5}" for n in outputs))
    for i, row in enumerate(x.tolist()):
        cells = "  ".join(f"{float(out[i]):5.2f}" for out in outputs.values())
        print(f"{'':15s}{row[0]:4.0f} {row[1]:4.0f} | {cells}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="Adam steps for XOR")
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the XOR cost plot (none if unset)")
    args = parser.parse_args(argv)

    print_table("sigmoid")
    print_table("sign")
    params, costs = classic.train_xor(
        jax.random.key(args.seed), steps=args.steps, restarts=args.restarts
    )
    x = classic.truth_table_inputs(2)
    out = classic.sigmoid_mlp(params, x)[:, 0]
    print(f"trained 2-2-1 XOR: outputs {[round(v, 3) for v in out.tolist()]}")
    print(f"quadratic cost {float(costs[0]):.4f} -> {float(costs[-1]):.6f}")
    accuracy = float(jnp.mean(jnp.round(out) == jnp.array([0.0, 1.0, 1.0, 0.0])))

    if args.out:
        with saved_axes(args.out, "xor_cost.png", (5, 3)) as ax:
            ax.semilogy(costs)
            ax.set(xlabel="Adam step", ylabel="quadratic cost", title="2-2-1 network on XOR")
    return {"xor_accuracy": accuracy, "final_cost": float(costs[-1])}


if __name__ == "__main__":
    main()
