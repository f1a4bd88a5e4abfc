"""Manual backpropagation (BP1-BP4 and the matrix form) checked against jax.grad, then
used to train a sigmoid/softmax network on scikit-learn's 8x8 digits.

    python examples/classic/backprop.py --steps 300 --out /tmp/plots
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _classic_plotting import saved_axes  # examples/classic/_classic_plotting.py

from nnjax import classic


def max_difference(a, b) -> jax.Array:
    """The largest absolute difference between two pytrees of arrays."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return jnp.max(jnp.stack([jnp.max(jnp.abs(u - v)) for u, v in pairs]))


@jax.jit
def check_against_autodiff(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Max |manual − jax.grad| for the quadratic-cost MLP and the softmax network."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    x = jax.random.normal(k1, (16, 4))
    params = classic.sigmoid_mlp_init(k2, (4, 8, 3))
    y = jax.random.uniform(k3, (16, 3))
    bp = max_difference(
        classic.backprop(params, x, y), jax.grad(classic.quadratic_cost)(params, x, y)
    )
    net = classic.softmax_net_init(k4, 4, 8, 3)
    labels = jnp.arange(16) % 3
    mf = max_difference(
        classic.softmax_net_grads(net, x, labels),
        jax.grad(classic.softmax_net_loss)(net, x, labels),
    )
    return bp, mf


def load_digits(seed: int):
    """scikit-learn's digits scaled to [0, 1], split 3:1 into train and test."""
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    x = (data.data / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = 3 * len(x) // 4
    tr, te = order[:cut], order[cut:]
    return (x[tr], data.target[tr]), (x[te], data.target[te])


def train(params, x, labels, *, steps: int, learning_rate: float):
    """Full-batch gradient descent with the hand-written gradient, in a lax.scan."""

    def step(p, _):
        grads = classic.softmax_net_grads(p, x, labels)
        p = jax.tree.map(lambda w, g: w - learning_rate * g, p, grads)
        return p, classic.softmax_net_loss(p, x, labels)

    return jax.lax.scan(step, params, length=steps)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the training-loss plot (none if unset)")
    args = parser.parse_args(argv)

    key = jax.random.key(args.seed)
    bp, mf = (float(e) for e in check_against_autodiff(key))
    print(f"max |BP1-BP4 - jax.grad| = {bp:.2e};  max |matrix form - jax.grad| = {mf:.2e}")

    (x_tr, y_tr), (x_te, y_te) = load_digits(args.seed)
    params = classic.softmax_net_init(key, x_tr.shape[1], args.hidden, 10)
    params, curve = jax.jit(train, static_argnames=("steps", "learning_rate"))(
        params,
        jnp.asarray(x_tr),
        jnp.asarray(y_tr),
        steps=args.steps,
        learning_rate=args.learning_rate,
    )
    pred = jnp.argmax(classic.softmax_net_logits(params, x_te), axis=-1)
    accuracy = float(jnp.mean(pred == jnp.asarray(y_te)))
    print(
        f"digits: loss {float(curve[0]):.3f} -> {float(curve[-1]):.3f}, "
        f"test accuracy {accuracy:.3f}"
    )

    if args.out:
        with saved_axes(args.out, "backprop_digits.png", (5, 3)) as ax:
            ax.plot(curve)
            ax.set(xlabel="step", ylabel="cross-entropy", title="manual backprop on digits")
    return {"bp_error": bp, "matrix_error": mf, "test_accuracy": accuracy}


if __name__ == "__main__":
    main()
