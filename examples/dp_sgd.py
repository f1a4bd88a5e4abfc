"""DP-SGD on the digits through fit's own-objective hook: per-example clipping plus noise.

Differentially private SGD (Abadi et al. 2016): every example's gradient is clipped to
global norm C, the clipped gradients of a batch are summed, Gaussian noise of standard
deviation sigma * C is added, and the sum is divided by the batch size. The whole
recipe is a ``loss_fn(model, batch)`` given to ``nnjax.train.fit``: it computes the
per-example gradients with ``nnjax.train.per_example_grads``, clips them with
``clip_per_example``, adds the noise (drawn from an ``nnx.Rngs`` stream carried in the
model, so it is checkpointed and reproducible), and returns a surrogate whose value is
the batch loss and whose gradient is the private gradient. fit jits, donates and
shards it like any other step. Padded rows of the last batch (mask 0) contribute no
gradient.

The privacy cost is reported with the Renyi-DP bound of the subsampled Gaussian
mechanism for small sampling rates, RDP(alpha) ~ 2 q^2 alpha / sigma^2 per step
(Mironov et al. 2019), converted to (epsilon, delta); an estimate, not an audited
accountant. A non-private run with the same model and budget is the baseline.

    python examples/dp_sgd.py --out runs/dp_sgd
"""

from __future__ import annotations

import argparse
import math

import _common
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nnjax import losses, nn
from nnjax import train as nt
from nnjax.data import load_digits

NAME = "dp_sgd"


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=15)
    parser.add_argument("--clip", type=float, default=1.0, help="per-example norm bound C (1.0)")
    parser.add_argument("--noise", type=float, default=1.0, help="noise multiplier sigma (1.0)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    parser.add_argument("--learning-rate", type=float, default=0.5, help="SGD step (0.5)")
    parser.add_argument("--delta", type=float, default=1e-5, help="target delta (1e-5)")
    return parser.parse_args(argv)


def epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    """(epsilon, delta)-DP of ``steps`` subsampled Gaussian steps (small-q RDP bound)."""
    orders = np.concatenate([np.linspace(1.1, 10.0, 90), np.arange(11, 257)])
    rdp = steps * 2 * q**2 * orders / sigma**2
    return float(np.min(rdp + math.log(1 / delta) / (orders - 1)))


def dp_loss_fn(clip: float, noise: float):
    """``loss_fn(model, batch)``: batch loss as value, clipped and noised gradient."""

    def loss_fn(model, batch):
        grads = nt.per_example_grads(model, losses.cross_entropy, batch.x, batch.y)
        grads = nt.clip_per_example(nnx.to_pure_dict(grads), clip)
        mask = batch.mask
        summed = jax.tree.map(lambda g: jnp.tensordot(mask, g, axes=1), grads)
        leaves, tree = jax.tree.flatten(summed)
        keys = jax.random.split(model.noise_rngs.noise(), len(leaves))
        noisy = [g + noise * clip * jax.random.normal(k, g.shape) for g, k in zip(leaves, keys)]
        private = jax.tree.unflatten(tree, noisy)
        real = jnp.maximum(jnp.sum(mask), 1.0)
        params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
        surrogate = sum(
            jnp.vdot(jax.lax.stop_gradient(g) / real, p)
            for g, p in zip(jax.tree.leaves(private), jax.tree.leaves(params))
        )
        per = losses.cross_entropy(model(batch.x), batch.y, reduction="none")
        value = jax.lax.stop_gradient(jnp.sum(per * mask) / real)
        return value + surrogate - jax.lax.stop_gradient(surrogate)

    return loss_fn


def data(quick: bool):
    """Digits scaled to [0, 1], flattened; 256/128 examples with ``quick``."""
    (xtr, ytr), (xte, yte) = load_digits()
    prep = lambda x: (x.reshape(len(x), -1) / 16.0).astype(np.float32)
    train, test = (prep(xtr), ytr.astype(np.int32)), (prep(xte), yte.astype(np.int32))
    if quick:
        train, test = (train[0][:256], train[1][:256]), (test[0][:128], test[1][:128])
    return train, test


def model_for(seed: int) -> nn.MLP:
    """The digits MLP 64-64-10 with a noise stream for DP-SGD."""
    model = nn.MLP(64, (64,), 10, rngs=nnx.Rngs(seed))
    model.noise_rngs = nnx.Rngs(noise=seed + 1)
    return model


def main(argv=None) -> dict:
    """Trains a private and a non-private model; prints test accuracy and epsilon."""
    args = parse_args(argv)
    epochs = _common.epochs_for(args, args.epochs)
    train, test = data(args.quick)
    kw = dict(
        optimizer="sgd",
        learning_rate=args.learning_rate,
        epochs=epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=2,
    )
    private = model_for(args.seed)
    with _common.Timer() as timer:
        history = nt.fit(private, train, loss_fn=dp_loss_fn(args.clip, args.noise), **kw)
    private_acc = nt.evaluate(private, test, loss="cross_entropy")["accuracy"]
    baseline = model_for(args.seed)
    nt.fit(baseline, train, loss="cross_entropy", **kw)
    baseline_acc = nt.evaluate(baseline, test, loss="cross_entropy")["accuracy"]
    q = args.batch_size / len(train[0])
    steps = epochs * math.ceil(len(train[0]) / args.batch_size)
    eps = epsilon(q, args.noise, steps, args.delta)
    print(
        f"DP-SGD: test accuracy {private_acc:.4f} (non-private {baseline_acc:.4f}), "
        f"epsilon ~ {eps:.2f} at delta {args.delta:g} after {steps} steps"
    )
    results = {
        "test_accuracy": private_acc,
        "baseline_test_accuracy": baseline_acc,
        "epsilon": eps,
        "delta": args.delta,
        "steps": steps,
        "train_s": round(timer.seconds, 1),
        "history": history.history,
    }
    _common.write_results(
        args,
        NAME,
        results,
        clip=args.clip,
        noise_multiplier=args.noise,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    return results


if __name__ == "__main__":
    main()
