"""Echo state network predicting the Mackey-Glass series (tau = 17) several steps ahead.

A sparse random reservoir (about 1% of connections, spectral radius 0.9) is driven by the
series; only the linear readout is trained, by ridge regression in closed form, to output
the value ``horizon`` steps ahead. Reports the test NRMSE per horizon.

    python examples/classic/echo_state.py --units 500 --horizons 1 5 10 --out /tmp/plots
"""

from __future__ import annotations

import argparse

import jax
from _classic_plotting import saved_axes  # examples/classic/_classic_plotting.py

from nnjax import classic


def evaluate(params, series, horizon: int, train: int, washout: int, ridge: float):
    """Fits the readout on the first ``train`` steps; returns (NRMSE, pred, target)."""
    u, target = series[:-horizon, None] - 0.9, series[horizon:, None]  # roughly centred
    states = classic.esn_states(params, u)
    readout = classic.esn_fit_readout(states[washout:train], target[washout:train], ridge=ridge)
    pred = classic.esn_readout(readout, states[train:])
    return float(classic.nrmse(pred, target[train:])), pred, target[train:]


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--density", type=float, default=0.01)
    parser.add_argument("--spectral-radius", type=float, default=0.9)
    parser.add_argument("--ridge", type=float, default=1e-6)
    parser.add_argument("--train", type=int, default=2000, help="training steps")
    parser.add_argument("--test", type=int, default=500, help="test steps")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the prediction plot (none if unset)")
    args = parser.parse_args(argv)

    key = jax.random.key(args.seed)
    series = classic.mackey_glass(args.train + args.test + max(args.horizons))
    params = classic.esn_init(
        key, 1, args.units, density=args.density, spectral_radius=args.spectral_radius
    )
    print(f"reservoir: {args.units} units, {int((params['w'] != 0).sum())} connections")
    errors, shown = {}, None
    for h in args.horizons:
        errors[h], pred, target = evaluate(params, series, h, args.train, 100, args.ridge)
        print(f"{h:3d} steps ahead: test NRMSE = {errors[h]:.4f}")
        shown = (h, pred, target)

    if args.out:
        h, pred, target = shown
        with saved_axes(args.out, "echo_state.png", (7, 3)) as ax:
            ax.plot(target[:, 0], label="Mackey-Glass")
            ax.plot(pred[:, 0], "--", label=f"ESN, {h} steps ahead")
            ax.set(xlabel="test step")
            ax.legend()
    return errors


if __name__ == "__main__":
    main()
