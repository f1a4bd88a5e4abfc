"""The ``nnjax`` command: train, evaluate, predict, summary, data and bench.

``nnjax train`` with no arguments trains an MLP on scikit-learn's digits (no download)
and prints the test accuracy. Every run writes a folder with the checkpoint (which
records the model's constructor arguments), the preprocessing of the inputs, the
history (CSV and JSON), the run's configuration and a learning-curve plot, so
``nnjax evaluate RUN`` and ``nnjax predict RUN inputs.npy`` work on raw data and
``nnjax.load(RUN)`` returns the model and its preprocessing. Epochs are counted from 1
wherever a person reads them. Bad arguments get a one-line message and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nnjax._cli_parser import build_parser
from nnjax._cli_setup import (
    CLIError,
    build_model,
    dataset_info,
    load_raw,
    load_run,
    load_split,
    loss_and_metrics,
    plot_history,
    read_config,
    targets,
)

EXIT_USAGE = 2


# --------------------------------------------------------------------------- commands


def _config(args: argparse.Namespace) -> dict:
    return {
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


#: `nnjax train` options that a resumed run takes from its config.json, and their keys.
_RECORDED = {
    "--dataset": "dataset",
    "--model": "model",
    "--hidden": "hidden",
    "--dropout": "dropout",
    "--batch-size": "batch_size",
    "--optimizer": "optimizer",
    "--lr": "learning_rate",
    "--seed": "seed",
    "--limit": "limit",
    "--data-dir": "data_dir",
}


def _given(argv: list[str]) -> set[str]:
    """The `nnjax train` options named in ``argv`` (argparse's unique prefixes included)."""
    given: set[str] = set()
    for token in argv:
        name = token.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2:
            matches = [o for o in _RECORDED if o.startswith(name)]
            given.update(matches if name in _RECORDED or len(matches) == 1 else ())
    return given


def _resumed_config(out: Path, args: argparse.Namespace) -> dict:
    """The run's recorded config with the new ``--epochs``; refuses changed settings."""
    saved = read_config(out / "config.json")
    asked = _config(args)
    for option in sorted(args.given):
        key = _RECORDED[option]
        if asked[key] != saved.get(key):
            raise CLIError(
                f"--resume continues {out} with its recorded settings, but {option} "
                f"{asked[key]} differs from the run's {key} {saved.get(key)}; drop {option}, "
                "or start a new run with another --out"
            )
    return {**saved, "epochs": args.epochs}


def _history_for_people(history) -> dict:
    """``History.to_dict()`` with 1-based epochs, as the console counts them."""
    data = history.to_dict()
    return {**data, "epoch": [int(e) + 1 for e in data["epoch"]]}


def _check_out(out: Path) -> None:
    """Refuses an ``--out`` that is a file, or a folder of checkpoints that is no run."""
    from nnjax.io import layout, steps

    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is an existing file, not a folder; choose another --out")
    if out.is_dir() and (steps.epochs(out) or (out / layout.META).is_file()):
        raise CLIError(
            f"--out {out} holds checkpoints of another kind (saved with nnjax.save or "
            "ModelCheckpoint), not a run of `nnjax train`; choose another --out"
        )


#: The files `nnjax train` writes into a run folder before the first checkpoint.
_RUN_FILES = ("config.json", "preprocessing.json", "history.csv")


def _new_paths(out: Path) -> list[Path]:
    """The folders and files of a run folder that do not exist yet (this run creates them)."""
    missing = [p for p in (out, out / "checkpoint") if not p.exists()]
    return missing + [out / name for name in _RUN_FILES if not (out / name).exists()]


@contextlib.contextmanager
def _removed_unless_saved(out: Path, created: list[Path]) -> Iterator[None]:
    """On an error before the first checkpoint, removes what this run created (only that).

    So a run that fails before training (bad data, a diverging first epoch, Ctrl-C)
    leaves no empty run folder behind; anything that was there before stays.
    """
    from nnjax import train

    try:
        yield
    except BaseException:
        if train.latest_epoch(out / "checkpoint") is None:
            for path in reversed(created):
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()  # only when empty: never someone else's files
                    else:
                        path.unlink()
        raise


def _fit(args, config, out, model, train_set, test_set, loss, metrics):
    from nnjax import train

    return train.fit(
        model,
        train_set,
        loss=loss,
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        validation_data=test_set,
        metrics=metrics,
        seed=config["seed"],
        verbose=0
        if args.quiet
        else (args.verbose if args.verbose == "auto" else int(args.verbose)),
        resume_from=out / "checkpoint" if args.resume else None,
        callbacks=[
            train.ModelCheckpoint(out / "checkpoint", max_to_keep=1),
            train.CSVLogger(out / "history.csv", append=args.resume, first_epoch=1),
        ],
    )


def cmd_train(args: argparse.Namespace) -> int:
    """`nnjax train`: trains a model into a run folder; returns the exit status."""
    from nnjax import nn, train
    from nnjax.io import layout, run

    config = _config(args)
    out = Path(
        args.out or f"runs/{config['dataset']}-{config['model']}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    _check_out(out)
    done = train.latest_epoch(out / "checkpoint")  # 0-based, None for a new run
    if done is not None and not args.resume:
        raise CLIError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    if args.resume and (out / "config.json").is_file():
        config = _resumed_config(out, args)
    done = 0 if done is None or not args.resume else done + 1  # epochs already trained
    if done >= config["epochs"]:
        raise CLIError(f"{out} has trained {done} epochs already; ask for more with --epochs")
    train_set, test_set, prep = load_split(config)
    model = build_model(config)
    loss, metrics = loss_and_metrics(config)
    created = _new_paths(out)
    out.mkdir(parents=True, exist_ok=True)
    layout.write_json(out / "config.json", config)
    layout.write_json(out / run.FILE, prep.to_dict())
    print(
        f"nnjax train: {config['model']} on {config['dataset']} "
        f"({len(train_set[0])} train / {len(test_set[0])} test), "
        f"{nn.count_params(model):,} parameters -> {out}"
        + (f" (resuming after epoch {done})" if done else "")
    )
    start = time.perf_counter()
    with _removed_unless_saved(out, created):
        history = _fit(args, config, out, model, train_set, test_set, loss, metrics)
    seconds = time.perf_counter() - start
    ran = len(history.epoch) - done  # this invocation's epochs, not the resumed ones
    layout.write_json(out / "history.json", _history_for_people(history))
    plotted = plot_history(history.history, out / "learning_curves.png")
    final = {k: v[-1] for k, v in history.history.items()}
    result = {"seconds": round(seconds, 2), "epochs_run": ran, "epochs": len(history.epoch)}
    layout.write_json(out / "result.json", {**result, **final})
    metric = metrics[0]
    span = f"epochs {done + 1}-{done + ran}" if ran > 1 else f"epoch {done + 1}"
    print(
        f"test {metric}: {final[f'val_{metric}']:.4f}  (test loss {final['val_loss']:.4f}, "
        f"{seconds:.1f} s for {span})"
    )
    print(
        f"saved checkpoint/, {run.FILE}, history.csv, history.json"
        f"{', learning_curves.png' if plotted else ''} in {out}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`nnjax evaluate RUN`: evaluates a run's checkpoint on its test split or raw arrays."""
    from nnjax import train

    run = Path(args.run)
    model, prep, config, epoch = load_run(run, fallback=args.fallback)
    if args.data_dir:
        config["data_dir"] = args.data_dir
    if (args.inputs is None) != (args.labels is None):
        raise CLIError("pass --inputs and --labels together (or neither: the test set)")
    if args.inputs is not None:
        x, y, what = _load_npy(args.inputs), _load_npy(args.labels), args.inputs
    else:
        (x, y), what = load_raw(config)[1], "test"
    loss, metrics = loss_and_metrics(config)
    logs = train.evaluate(model, (prep(x), targets(config, y)), loss=loss, metrics=metrics)
    print(
        f"{run} (after epoch {epoch}): "
        + ", ".join(f"{what} {k}: {v:.4f}" for k, v in logs.items())
    )
    return 0


def _load_npy(path: str):
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CLIError(f"{path}: cannot read as a .npy array ({err})") from None


def cmd_predict(args: argparse.Namespace) -> int:
    """`nnjax predict RUN INPUTS.npy`: predictions for raw inputs, preprocessed as in training."""
    import numpy as np

    from nnjax import train

    model, prep, _, _ = load_run(Path(args.run), fallback=args.fallback)
    outputs = np.asarray(train.predict(model, prep(_load_npy(args.inputs))))
    if args.output:
        np.save(args.output, outputs, allow_pickle=False)
    if prep.class_names is not None:
        for i, name in enumerate(prep.decode(outputs)):
            print(f"{i}\t{name}")
    else:
        for i, row in enumerate(outputs.reshape(len(outputs), -1)):
            print(f"{i}\t" + " ".join(f"{v:.6g}" for v in row))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    """`nnjax summary`: prints the layer table of a model for a dataset."""
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
    """`nnjax data list|fetch|verify`: the dataset registry from the shell."""
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
    """`nnjax bench NAME`: runs benchmarks/bench_NAME.py of a source checkout."""
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    script = root / f"bench_{args.name}.py"
    if not script.is_file():
        raise CLIError(
            f"no benchmark script {script}: `nnjax bench` runs the scripts of a source "
            "checkout (pip install -e '.[bench]')"
        )
    return subprocess.call([sys.executable, str(script), *args.extra])


def cmd_launch(args: argparse.Namespace) -> int:
    """`nnjax launch --processes N -- CMD`: N local processes of one JAX run."""
    from nnjax import distributed

    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        raise CLIError("launch needs a command after --, e.g. nnjax launch -- python train.py")
    return distributed.launch(command, args.processes, port=args.port, timeout_s=args.timeout)


# --------------------------------------------------------------------------- parser


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "summary": cmd_summary,
    "data": cmd_data,
    "bench": cmd_bench,
    "launch": cmd_launch,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nnjax`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.given = _given(argv)
    try:
        return COMMANDS[args.command](args)
    except (CLIError, ValueError, TypeError, OSError) as err:
        # Input errors from nnjax (shapes, labels, datasets, checkpoints) are messages.
        return _fail(args.command, err, EXIT_USAGE)
    except FloatingPointError as err:  # NonFiniteLossError: the run diverged
        return _fail(args.command, err, 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a failure nnjax did not foresee: still one line
        return _fail(args.command, err, 1, kind=True)


def _fail(command: str, err: BaseException, status: int, *, kind: bool = False) -> int:
    """Prints ``err`` as one line on stderr; returns ``status``."""
    text = " ".join(str(err).split()) or type(err).__name__
    if kind or isinstance(err, KeyError):
        text = f"{type(err).__name__}: {text}"
    print(f"nnjax {command}: error: {text}", file=sys.stderr)
    return status


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
