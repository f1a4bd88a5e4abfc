"""The ``nnjax`` command: train, evaluate, summary, data and bench.

``nnjax train`` with no arguments trains an MLP on scikit-learn's digits (no download)
and prints the test accuracy. Every run writes a folder with the checkpoint, the
history (CSV and JSON), the run's configuration and a learning-curve plot. Bad
arguments get a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nnjax._cli_setup import (
    CLIError,
    build_model,
    dataset_info,
    load_split,
    loss_and_metrics,
    plot_history,
)

EXIT_USAGE = 2
MODELS = ("mlp", "cnn", "lstm", "gru")
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "rmsprop")


# --------------------------------------------------------------------------- helpers


def _sizes(text: str) -> tuple[int, ...]:
    """Parses ``"500,300,100"`` into ``(500, 300, 100)`` (for argparse)."""
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return sizes


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    from nnjax import nn, train

    config = {
        "dataset": args.dataset,
        "model": args.model,
        "hidden": list(args.hidden or ((128,) if args.model != "mlp" else (256, 128))),
        "dropout": args.dropout,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": args.lr,
        "seed": args.seed,
        "limit": args.limit,
        "data_dir": args.data_dir,
    }
    out = Path(
        args.out or f"runs/{config['dataset']}-{config['model']}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    if (out / "checkpoint").exists() and not args.resume:
        raise CLIError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    if args.resume and (out / "config.json").is_file():
        config = {**json.loads((out / "config.json").read_text()), "epochs": args.epochs}
    out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = load_split(config)
    model = build_model(config)
    loss, metrics = loss_and_metrics(config)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    print(
        f"nnjax train: {config['model']} on {config['dataset']} "
        f"({len(train_set[0])} train / {len(test_set[0])} test), "
        f"{nn.count_params(model):,} parameters -> {out}"
    )
    start = time.perf_counter()
    history = train.fit(
        model,
        train_set,
        loss=loss,
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        validation=test_set,
        metrics=metrics,
        seed=config["seed"],
        verbose=0 if args.quiet else "auto",
        resume_from=out / "checkpoint" if args.resume else None,
        callbacks=[
            train.ModelCheckpoint(out / "checkpoint", max_to_keep=1),
            train.CSVLogger(out / "history.csv", append=args.resume),
        ],
    )
    seconds = time.perf_counter() - start
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=2))
    plotted = plot_history(history.history, out / "learning_curves.png")
    final = {k: v[-1] for k, v in history.history.items()}
    result = {"seconds": round(seconds, 2), **final}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    metric = metrics[0]
    print(
        f"test {metric}: {final[f'val_{metric}']:.4f}  (test loss {final['val_loss']:.4f}, "
        f"{seconds:.1f} s for {config['epochs']} epochs)"
    )
    print(
        f"saved checkpoint/, history.csv, history.json"
        f"{', learning_curves.png' if plotted else ''} in {out}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nnjax import train

    run = Path(args.run)
    if not (run / "config.json").is_file():
        raise CLIError(f"{run} is not a run folder of `nnjax train` (no config.json)")
    config = json.loads((run / "config.json").read_text())
    if args.data_dir:
        config["data_dir"] = args.data_dir
    model = build_model(config)
    try:
        meta = train.load_checkpoint(run / "checkpoint", model)
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    _, test_set = load_split(config)
    loss, metrics = loss_and_metrics(config)
    logs = train.evaluate(model, test_set, loss=loss, metrics=metrics)
    print(
        f"{run} (after epoch {meta['epoch'] + 1}): "
        + ", ".join(f"test {k}: {v:.4f}" for k, v in logs.items())
    )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nnjax import nn

    config = {
        "dataset": args.dataset,
        "model": args.model,
        "seed": 0,
        "dropout": 0.0,
        "hidden": list(args.hidden or ((500, 300, 100) if args.model == "mlp" else (128,))),
    }
    model = build_model(config)
    shape = (1, *dataset_info(args.dataset).input_shape)
    nn.summary(model, shape)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from nnjax import data

    if args.action == "list":
        for name in data.available_datasets():
            info = data.dataset_info(name)
            where = "download" if info.needs_download else "offline"
            print(
                f"{name:<14} {where:<9} {info.task:<15} {info.input_shape!s:<10} {info.description}"
            )
        return 0
    if not args.name:
        raise CLIError(f"`nnjax data {args.action}` needs a dataset name")
    dataset_info(args.name)
    if args.action == "fetch":
        try:
            paths = data.fetch(args.name, data_dir=args.data_dir)
        except data.DatasetError as err:
            raise CLIError(str(err)) from None
        for path in paths:
            print(f"ok  {path}")
        print(
            f"{args.name}: {len(paths)} files ready" if paths else f"{args.name}: nothing to fetch"
        )
        return 0
    reports = data.verify(args.name, data_dir=args.data_dir)
    for report in reports:
        print(f"{report.status:<18} {report.name}  {report.path or report.detail}")
    bad = [r for r in reports if not r.ok]
    if bad:
        print(
            f"{args.name}: {len(bad)} of {len(reports)} files missing or damaged; "
            f"run `nnjax data fetch {args.name}`",
            file=sys.stderr,
        )
        return 1
    print(
        f"{args.name}: all {len(reports)} files verified" if reports else f"{args.name}: no files"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    script = root / f"bench_{args.name}.py"
    if not script.is_file():
        raise CLIError(
            f"no benchmark script {script}: `nnjax bench` runs the scripts of a source "
            "checkout (pip install -e '.[bench]')"
        )
    return subprocess.call([sys.executable, str(script), *args.extra])


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnjax", description="Train, evaluate and inspect nnjax models from the shell."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model; writes a run folder",
        description="Train a model and write checkpoint, history and plots.",
    )
    p.add_argument("--dataset", default="digits", help="a name from `nnjax data list` (digits)")
    p.add_argument("--model", choices=MODELS, default="mlp")
    p.add_argument("--hidden", type=_sizes, help="hidden sizes, e.g. 500,300,100")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate (0)")
    p.add_argument("--epochs", type=_positive(int), default=10)
    p.add_argument("--batch-size", type=_positive(int), default=32)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate (1e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=_positive(int), help="use only the first N examples")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--out", help="run folder (default runs/<dataset>-<model>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run on its test set",
        description="Evaluate the checkpoint of a `nnjax train` run folder.",
    )
    p.add_argument("run", help="the run folder written by `nnjax train`")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "summary",
        help="print a model's layers and parameter counts",
        description="Print the layer table of a model for a dataset.",
    )
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", choices=MODELS, default="mlp")
    p.add_argument("--hidden", type=_sizes, help="hidden sizes (mlp: 500,300,100)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "data",
        help="list, fetch or verify datasets",
        description="List the datasets, fetch one into the cache, or verify it.",
    )
    p.add_argument("action", choices=("list", "fetch", "verify"))
    p.add_argument("name", nargs="?", help="dataset name (fetch, verify)")
    p.add_argument("--data-dir", help="folder to search first")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser(
        "bench",
        help="run a benchmark script (source checkout)",
        description="Run benchmarks/bench_<name>.py; extra arguments pass on.",
    )
    p.add_argument("name", nargs="?", default="mlp", help="benchmark name (mlp)")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="arguments for the script")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nnjax`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as err:
        print(f"nnjax {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError) as err:
        # Input errors from nnjax (shapes, labels, datasets) are messages, not crashes.
        print(f"nnjax {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
