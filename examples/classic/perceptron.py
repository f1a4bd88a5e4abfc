"""Perceptron vs scikit-learn's Perceptron on a linearly separable set.

Trains a threshold unit with the perceptron rule (one example at a time, a ``lax.scan``)
and compares its accuracy with ``sklearn.linear_model.Perceptron`` on the same data.

    python examples/classic/perceptron.py --samples 400 --epochs 20 --out /tmp/plots
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _classic_plotting import saved_axes  # examples/classic/_classic_plotting.py

from nnjax import classic


def make_data(seed: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs in 2-D, labelled by a line with a clear margin."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 2)).astype(np.float32)
    margin = x @ np.array([1.5, -1.0]) + 0.5
    keep = np.abs(margin) > 0.3
    return x[keep], (margin[keep] > 0).astype(np.float32)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the decision-boundary plot (none if unset)")
    args = parser.parse_args(argv)

    x, y = make_data(args.seed, args.samples)
    key = jax.random.key(args.seed)
    params = classic.perceptron_init(key, 2, 1)
    params, errors = classic.perceptron_fit(
        params, x, y[:, None], learning_rate=args.learning_rate, epochs=args.epochs, key=key
    )
    ours = float(jnp.mean(classic.perceptron(params, x)[:, 0] == y))
    print(f"errors per epoch: {errors.tolist()}")
    print(f"nnjax perceptron accuracy: {ours:.3f}")
    result = {"nnjax": ours}
    try:
        from sklearn.linear_model import Perceptron
    except ImportError:
        print("scikit-learn not installed: no comparison")
    else:
        ref = Perceptron(max_iter=args.epochs, tol=None, random_state=args.seed).fit(x, y)
        result["sklearn"] = float(ref.score(x, y))
        print(f"sklearn Perceptron accuracy: {result['sklearn']:.3f}")

    if args.out:
        w, b = np.asarray(params["kernel"][:, 0]), float(params["bias"][0])
        with saved_axes(args.out, "perceptron.png", (4, 4)) as ax:
            ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=8)
            xs = np.linspace(x[:, 0].min(), x[:, 0].max(), 2)
            ax.plot(xs, -(b + w[0] * xs) / w[1], "k-", label="perceptron boundary")
            ax.legend()
    return result


if __name__ == "__main__":
    main()
