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
import os
import subprocess
import sys
from pathlib import Path

from nnjax._cli_parser import build_parser
from nnjax._cli_setup import (
    CLIError,
    build_model,
    dataset_info,
    load_raw,
    load_run,
    loss_and_metrics,
    targets,
)
from nnjax._cli_train import _say, cmd_train, given_options

EXIT_USAGE = 2


# --------------------------------------------------------------------------- commands


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`nnjax evaluate RUN`: evaluates a run's checkpoint on its test split or raw arrays.

    Under ``nnjax launch --processes N`` every process joins the group and evaluates its
    rows of each batch; process 0 prints the (global) metrics. ``--inputs`` and
    ``--labels`` must be numeric ``.npy`` arrays of finite values.
    """
    from nnjax import train

    _join_if_launched()
    run = Path(args.run)
    model, prep, config, epoch = load_run(run, fallback=args.fallback)
    if args.data_dir:
        config["data_dir"] = args.data_dir
    if (args.inputs is None) != (args.labels is None):
        raise CLIError("pass --inputs and --labels together (or neither: the test set)")
    if args.inputs is not None:
        x, y, what = _load_finite(args.inputs), _load_finite(args.labels), args.inputs
    else:
        (x, y), what = load_raw(config)[1], "test"
    loss, metrics = loss_and_metrics(config)
    logs = train.evaluate(model, (prep(x), targets(config, y)), loss=loss, metrics=metrics)
    scores = ", ".join(f"{what} {k}: {v:.4f}" for k, v in logs.items())
    _say(f"{run} (after epoch {epoch}): {scores}")
    return 0


def _join_if_launched() -> None:
    """Under ``nnjax launch``: joins the group before any JAX work (every process runs it)."""
    from nnjax.distributed.process import initialize_if_launched

    initialize_if_launched()


def _main_process() -> bool:
    from nnjax.distributed.process import is_main_process

    return is_main_process()


#: The first bytes of every .npy file (``numpy.lib.format.MAGIC_PREFIX``).
_NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: str):
    """The array in the ``.npy`` file ``path``; anything else is a one-line error.

    Only numeric arrays are read (never pickled Python objects).
    """
    import numpy as np

    try:
        with open(path, "rb") as file:
            if file.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
                raise CLIError(
                    f"{path}: not a .npy file (it lacks the .npy header); "
                    "write arrays with numpy.save"
                )
            file.seek(0)
            return np.load(file, allow_pickle=False)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{path}: a folder, not a .npy file") from None
    except (OSError, ValueError, EOFError) as err:
        if "allow_pickle" in str(err):  # an object array: Python objects, not numbers
            raise CLIError(f"{path}: holds Python objects, not a numeric array") from None
        raise CLIError(f"{path}: cannot read as a .npy array ({err})") from None


def _load_finite(path: str):
    """:func:`_load_npy`, refusing NaN and infinite values (naming the first bad row)."""
    import numpy as np

    array = _load_npy(path)
    if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        rows = np.atleast_1d(array)
        row = int(np.argmin(np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)))
        raise CLIError(f"{path}: row {row} holds NaN or infinite values; nnjax needs finite inputs")
    return array


def cmd_predict(args: argparse.Namespace) -> int:
    """`nnjax predict RUN INPUTS.npy`: predictions for raw inputs, preprocessed as in training.

    The inputs must be a numeric ``.npy`` array of finite values: a NaN or infinite
    value is refused (a one-line error naming the file and the first such row).

    Under ``nnjax launch --processes N`` every process joins the group and predicts its
    rows; process 0 prints the predictions and writes ``--output``.
    """
    import numpy as np

    from nnjax import train

    _join_if_launched()
    model, prep, _, _ = load_run(Path(args.run), fallback=args.fallback)
    outputs = np.asarray(train.predict(model, prep(_load_finite(args.inputs))))
    if not _main_process():  # every process holds all the outputs; process 0 reports them
        return 0
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
    args.given = given_options(argv)
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
