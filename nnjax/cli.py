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
import gc
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from nnjax._cli_exit import exit_now as _exit_now
from nnjax._cli_exit import in_a_group, leave_group, silence_stdout
from nnjax._cli_parser import build_parser
from nnjax._cli_setup import (
    CLIError,
    build_model,
    dataset_info,
    load_finite,
    load_raw,
    load_run,
    loss_and_metrics,
    precision,
    save_npy,
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
        x, y, what = load_finite(args.inputs), load_finite(args.labels), args.inputs
    else:
        (x, y), what = load_raw(config)[1], "test"
    loss, metrics = loss_and_metrics(config)
    data = (prep(x), targets(config, y))
    logs = train.evaluate(model, data, loss=loss, metrics=metrics, precision=precision(config))
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


def cmd_predict(args: argparse.Namespace) -> int:
    """`nnjax predict RUN INPUTS.npy`: predictions for raw inputs, preprocessed as in training.

    The inputs must be a numeric ``.npy`` array of finite values: a NaN or infinite
    value is refused (a one-line error naming the file and the first such row). An
    empty array (0 rows) prints nothing and writes an empty ``--output`` of the
    model's output shape.

    Under ``nnjax launch --processes N`` every process joins the group and predicts its
    rows; process 0 prints the predictions and writes ``--output``.
    """
    _join_if_launched()
    model, prep, config, _ = load_run(Path(args.run), fallback=args.fallback)
    outputs = _predicted(model, prep(load_finite(args.inputs)), precision(config))
    if not _main_process():  # every process holds all the outputs; process 0 reports them
        return 0
    if args.output:
        save_npy(args.output, outputs)
    if prep.class_names is not None:
        for i, name in enumerate(prep.decode(outputs)):
            print(f"{i}\t{name}")
    else:
        rows = outputs.reshape(len(outputs), -1) if len(outputs) else outputs  # 0 rows: none
        for i, row in enumerate(rows):
            print(f"{i}\t" + " ".join(f"{v:.6g}" for v in row))
    return 0


def _predicted(model: Any, x: Any, at: str | None = None) -> Any:
    """``train.predict``'s outputs; for 0 rows, an empty array of the model's output shape.

    ``train.predict`` refuses an empty ``x``; the output's shape and dtype come from an
    abstract evaluation of the model (nothing compiles).
    """
    import numpy as np

    from nnjax import train

    if len(x):
        return np.asarray(train.predict(model, x, precision=at))
    from nnjax.train.abstract_output import output_shape
    from nnjax.train.step import split_model

    graphdef, params, rest = split_model(model, training=False)
    one = output_shape(model, graphdef, params, rest, x)
    return np.zeros((0, *one.shape[1:]), one.dtype)


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
        if args.name:
            raise CLIError(f"`nnjax data list` takes no dataset name, got {args.name!r}")
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


#: The exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130
#: The exit status when the reader of stdout went away (128 + SIGPIPE): `| head` and such.
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nnjax`` console script and ``python -m nnjax``.

    Args:
      argv: the arguments after ``nnjax``; ``None`` reads ``sys.argv`` (the command).

    Returns:
      The exit status: 0, 2 for a bad argument, file or checkpoint, 1 for a diverged
      run or an unexpected failure, 130 after Ctrl-C, 141 when stdout was closed (the
      reader of a pipe exited). Run as the command (``argv=None``), Ctrl-C ends the
      process at once with 130 instead of returning, so interpreter shutdown cannot
      trip over half-finished imports or runtime threads. In a group of processes
      (``nnjax launch``), a failed or interrupted command ends the process at once with
      its status, so the others are stopped instead of waiting for it in JAX's
      shutdown barrier.

    Raises:
      SystemExit: from the argument parser (``--help``, ``--version``, a bad value).

    Example:
      >>> main(["data", "verify", "xor"])  # a synthetic set: no files to check
      xor: no files
      0
    """
    command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = "nnjax"
    try:
        with _interrupts_outside_gc(command_line):
            args = build_parser().parse_args(argv)  # imports JAX and Optax: takes a while
            args.given = given_options(argv)
            prog = f"nnjax {args.command}"
            return _leave_on_failure(_dispatch(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        if in_a_group():
            leave_group(EXIT_INTERRUPTED)
        if command_line:
            _exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def _interrupts_outside_gc(install: bool) -> Iterator[None]:
    """With ``install`` (and Python's own Ctrl-C handler in place), Ctrl-C is never lost.

    CPython swallows an exception raised inside a garbage-collector callback (it prints
    "Exception ignored in ..." and goes on), and JAX registers one: a Ctrl-C that lands
    there would print a traceback and let the run continue. This handler sends the
    signal again a moment later instead, when it lands in such a callback.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    if not (
        install and main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        yield
        return
    signal.signal(signal.SIGINT, _on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """Raises ``KeyboardInterrupt``, or resends SIGINT when ``frame`` is in a gc callback."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None and hasattr(signal, "pthread_kill"):  # POSIX
        if frame.f_code in callbacks:
            main = threading.main_thread().ident
            resend = threading.Timer(0.05, signal.pthread_kill, (main, signum))
            resend.daemon = True
            resend.start()
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def _dispatch(args: argparse.Namespace) -> int:
    """Runs the command; every exception it raises (but Ctrl-C) becomes one line on stderr."""
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, so a closed pipe is reported here, not at exit
        return status
    except BrokenPipeError:  # `nnjax predict ... | head`: the reader has all it wanted
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except (CLIError, ValueError, TypeError, OSError) as err:
        # Input errors from nnjax (shapes, labels, datasets, checkpoints) are messages.
        return _fail(args.command, err, EXIT_USAGE)
    except FloatingPointError as err:  # NonFiniteLossError: the run diverged
        return _fail(args.command, err, 1)
    except Exception as err:  # a failure nnjax did not foresee: still one line
        return _fail(args.command, err, 1, kind=True)


def _leave_on_failure(status: int) -> int:
    """``status``; but a process of a group (``nnjax launch``) that failed ends at once.

    Its error is printed already; see :func:`nnjax._cli_exit.leave_group`.
    """
    if status and in_a_group():
        leave_group(status)
    return status


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
