"""Random search on the Fashion-MNIST MLP: learning rate, width and dropout in one sweep.

``nnjax.train.sweep`` trains every member of a random search at once: members with the
same structure (width, dropout) share one compiled program (vmapped over the members; on
the CPU, members over 100,000 parameters, as here, run one at a time in it), learning
rates are injected per member (no recompiling), every member is validated every epoch on
a 5,000-image split of the training set and stops on its own (EarlyStopping on
val_accuracy, patience 2, best weights restored). The best member comes back as an
ordinary model and is evaluated once on the test set, beside the course table's 0.8804
(row 3 of examples/fashion_mnist_mlp.py: 784-500-300-100-10, SGD, 15 epochs).

Search space (6 members, 6 epochs at most, batch 64, Adam; kept this small so that the
run takes 10-17 minutes on 2 CPU cores shared with other jobs; more members and
epochs find better ones: --members 16 --epochs 20):

  learning_rate  log-uniform in [3e-4, 3e-3]
  width          784-500-300-100-10 or 784-256-128-10 (at the default seed 0 all six
                 draws are the first)
  dropout        0.1 or 0.3

    python examples/hyperparameter_search.py            # 10-17 min on 2 busy cores
    python examples/hyperparameter_search.py --quick    # smoke test, seconds
"""

from __future__ import annotations

import argparse

import _common
import optax
from flax import nnx

from nnjax import nn
from nnjax.train import EarlyStopping, evaluate
from nnjax.train.sweep import Choice, LogUniform, random_search, sweep

NAME = "hyperparameter_search"
COURSE_ACCURACY = 0.8804
WIDTHS = {"500-300-100": (500, 300, 100), "256-128": (256, 128)}
SPACE = {
    "learning_rate": LogUniform(3e-4, 3e-3),
    "width": Choice(sorted(WIDTHS)),
    "dropout": Choice([0.1, 0.3]),
}


def model_fn(rngs: nnx.Rngs, width: str, dropout: float) -> nn.MLP:
    """One member: the Fashion-MNIST MLP with the given hidden sizes and dropout rate."""
    return nn.MLP(784, WIDTHS[width], 10, dropout=dropout, rngs=rngs)


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=6)
    parser.add_argument("--members", type=int, default=6, help="random-search members")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Runs the search, prints the table, evaluates the best member, writes results.json."""
    args = parse_args(argv)
    train, test = _common.fashion_mnist(quick=args.quick)
    flat = lambda split: (split[0].reshape(len(split[0]), -1), split[1])
    train, test = flat(train), flat(test)
    size = 256 if args.quick else 5000
    fit_set, val = _common.validation_split(*train, size=size, seed=args.seed)
    members = random_search(3 if args.quick else args.members, SPACE, seed=args.seed)
    epochs = _common.epochs_for(args, 6)
    stop = EarlyStopping("val_accuracy", patience=2, restore_best_weights=True)
    with _common.Timer() as timer:
        result = sweep(
            model_fn, fit_set, loss="cross_entropy", optimizer=optax.adam, members=members,
            epochs=epochs, batch_size=64, validation_data=val, callbacks=[stop], verbose=2,
        )  # fmt: skip
    print(result.table("val_accuracy"))
    best = result.best_index("val_accuracy")
    scores = evaluate(result.best("val_accuracy"), test, loss="cross_entropy", batch_size=1000)
    print(
        f"\nbest member {best} {result.rows('val_accuracy')[best]}: test accuracy "
        f"{scores['accuracy']:.4f} (course table: {COURSE_ACCURACY}); {timer.seconds:.0f} s"
    )
    results = {
        "best_member": best,
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "course_accuracy": COURSE_ACCURACY,
        "train_s": round(timer.seconds, 1),
        "groups": len(result.groups),
        "members": result.rows("val_accuracy"),
        "history": result.history,
    }
    _common.write_results(
        args, NAME, results, members=len(result.seeds), space=str(SPACE), batch_size=64,
        optimizer="adam", early_stopping="val_accuracy, patience 2, best restored",
        train_size=len(fit_set[0]), validation_size=len(val[0]), test_size=len(test[0]),
    )  # fmt: skip
    return results


if __name__ == "__main__":
    main()
