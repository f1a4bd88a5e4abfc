"""A small CNN on Fashion-MNIST: conv/pool blocks, batch norm and dropout, 91%+ test accuracy.

The model is nnjax.nn.CNN: two blocks conv 3x3 (32, then 64 filters) -> batch norm ->
ReLU -> max-pool 2x2, then dense 128 -> dropout 0.3 -> 10 logits. It trains with Adam,
its step cosine-decayed to 0 over the run, on 55,000 images; 5,000 are held out for
validation and the test set is scored once, at the end.

    python examples/fashion_mnist_cnn.py --out runs/fashion_mnist_cnn   # ~7 min on 2 cores
"""

from __future__ import annotations

import argparse

import _common
import jax
import optax
from flax import nnx

from nnjax import nn

NAME = "fashion_mnist_cnn"


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=5)
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="initial Adam step (1e-3)"
    )
    parser.add_argument(
        "--features", type=int, nargs="+", default=[32, 64], help="filters per conv block"
    )
    return parser.parse_args(argv)


def build(features, seed: int) -> nn.CNN:
    """The CNN: conv blocks with batch norm and pooling, a dense head with dropout."""
    return nn.CNN(
        (28, 28),
        10,
        conv_features=tuple(features),
        batch_norm=True,
        dense=(128,),
        dropout=0.3,
        rngs=nnx.Rngs(seed),
    )


def main(argv=None) -> dict:
    """Trains the CNN, prints its summary and test accuracy, writes ``results.json``."""
    args = parse_args(argv)
    (x, y), test = _common.fashion_mnist(quick=args.quick)
    fit, val = _common.validation_split(x, y, len(x) // 12, seed=args.seed)
    model = build(args.features, args.seed)
    nn.summary(model, (1, 28, 28))
    epochs = _common.epochs_for(args, args.epochs)
    steps = epochs * -(-len(fit[0]) // args.batch_size)  # fit pads the last batch: ceil
    optimizer = optax.adam(optax.cosine_decay_schedule(args.learning_rate, max(steps, 1)))
    result = _common.fit_and_evaluate(
        model,
        fit,
        test,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=args.batch_size,
        validation_data=val,
        seed=args.seed,
    )
    print(
        f"test accuracy {result['test_accuracy']:.4f} after {result['epochs_run']} epochs, "
        f"{result['train_s']:.0f} s of training on {jax.devices()[0].platform}"
    )
    _common.write_results(
        args,
        NAME,
        result,
        model=f"CNN conv{tuple(args.features)}+BN+ReLU+maxpool, dense 128+dropout 0.3",
        params=nn.count_params(model),
        optimizer=f"adam, lr {args.learning_rate} cosine-decayed to 0 over {steps} steps",
        batch_size=args.batch_size,
        train_size=len(fit[0]),
        validation_size=len(val[0]),
        trainer="nnjax.train.fit",
    )
    return result


if __name__ == "__main__":
    main()
