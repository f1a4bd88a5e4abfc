"""The adding problem: an LSTM solves it at sequence length 100, a vanilla RNN does not.

Each input is a sequence of T pairs (value ~ U(0, 1), marker); exactly two markers are
1, one in each half, and the target is the sum of the two marked values (Hochreiter &
Schmidhuber 1997). Always predicting the mean, 1.0, gives MSE = Var(u1 + u2) = 1/6
~ 0.167: the trivial baseline. To beat it the first marked value must be carried across
up to T steps. The gradient that would teach a tanh RNN to do so shrinks geometrically
with the distance (vanishing gradients), so it stays at the baseline; the LSTM's
additive cell state keeps it alive and the LSTM's error falls far below.

Both models are nnjax.nn.SequenceRegressor (cell="lstm" / "rnn", 64 units) trained with
fit for the same budget (10 epochs of 20,000 sequences, 3,130 updates of batch 64, the
last of each epoch padded), Adam (lr 3e-3) and gradient clipping at global norm 1.
learning_curves.png shows both learning curves against the baseline. (A vanilla RNN with
an orthogonal recurrent matrix can leave the plateau after many more updates; see
examples/README.md.)

    python examples/lstm_adding_problem.py --out runs/lstm_adding_problem
"""

from __future__ import annotations

import argparse

import _common
import numpy as np
import optax
from flax import nnx

from nnjax import nn
from nnjax.data import adding_problem

NAME = "lstm_adding_problem"
CELLS = ("lstm", "rnn")


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=10)
    parser.add_argument("--seq-len", type=int, default=100, help="sequence length T (100)")
    parser.add_argument("--hidden", type=int, default=64, help="recurrent units (64)")
    parser.add_argument("--train-size", type=int, default=20_000, help="training sequences")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam step (3e-3)")
    return parser.parse_args(argv)


def datasets(args: argparse.Namespace):
    """Train, validation and test sets of the adding problem, targets shaped ``(N, 1)``."""
    sizes = (256, 128, 128) if args.quick else (args.train_size, 2000, 2000)
    seq_len = 20 if args.quick else args.seq_len
    sets = []
    for offset, size in enumerate(sizes):
        x, y = adding_problem(size, seq_len, seed=args.seed + 1000 * offset)
        sets.append((x, y[:, None]))
    return sets


def train_cell(cell: str, train, val, test, args: argparse.Namespace) -> dict:
    """Trains a SequenceRegressor with ``cell``; returns its curves and test MSE."""
    hidden = 8 if args.quick else args.hidden
    model = nn.SequenceRegressor(2, hidden, cell=cell, rngs=nnx.Rngs(args.seed))
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.learning_rate))
    print(f"\n== {cell.upper()}: {nn.count_params(model):,} parameters")
    result = _common.fit_and_evaluate(
        model,
        train,
        test,
        loss="mse",
        metrics=(),
        optimizer=optimizer,
        epochs=_common.epochs_for(args, args.epochs),
        batch_size=args.batch_size,
        validation_data=val,
        seed=args.seed,
    )
    return {"cell": cell, "hidden": hidden, **result}


def plot(results: list[dict], baseline: float, steps_per_epoch: int, seq_len: int, path) -> None:
    """Training and validation MSE per epoch of every model, against the baseline."""
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in results:
        label = result["cell"].upper()
        val = result["history"]["val_loss"]
        updates = steps_per_epoch * np.arange(1, len(val) + 1)
        (line,) = ax.plot(updates, val, "o-", label=f"{label} validation")
        ax.plot(
            updates,
            result["history"]["loss"],
            ":",
            color=line.get_color(),
            label=f"{label} training (epoch mean)",
        )
    ax.axhline(baseline, color="grey", ls="--", label=f"always 1.0: MSE {baseline:.3f}")
    ax.set(
        yscale="log",
        xlabel="updates",
        ylabel="MSE",
        title=f"Adding problem, T = {seq_len}: LSTM vs vanilla RNN",
    )
    ax.legend()
    _common.save_figure(fig, path)


def main(argv=None) -> dict:
    """Trains both models, prints their test MSE, saves the curves and results.json."""
    args = parse_args(argv)
    train, val, test = datasets(args)
    baseline = float(np.mean((test[1] - 1.0) ** 2))
    results = [train_cell(cell, train, val, test, args) for cell in CELLS]
    print(f"\nbaseline (always predict 1.0): test MSE {baseline:.4f}")
    _common.print_table(results, ("cell", "epochs_run", "test_loss", "train_s"))
    steps = -(-len(train[0]) // min(args.batch_size, len(train[0])))  # updates per epoch: ceil
    plot(results, baseline, steps, train[0].shape[1], args.out / "learning_curves.png")
    summary = {
        "baseline_mse": baseline,
        "test_mse": {r["cell"]: r["test_loss"] for r in results},
        "models": results,
    }
    _common.write_results(
        args,
        NAME,
        summary,
        seq_len=train[0].shape[1],
        train_size=len(train[0]),
        batch_size=args.batch_size,
        optimizer=f"clip_by_global_norm(1.0) + adam({args.learning_rate})",
    )
    return summary


if __name__ == "__main__":
    main()
