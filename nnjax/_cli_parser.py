"""The argument parser of the ``nnjax`` command (private).

Choices come from the tables the code uses (``MODELS``, the optimizer table of
:mod:`nnjax.train.optimizers`), and ``--help`` shows every default. A bad value is an
argparse error (exit status 2) that says what was expected and repeats what was given,
on one line of stderr (no usage block), e.g. ``nnjax train: error: argument --epochs:
expected a positive integer, got 'abc' (see `nnjax train --help`)``; a negative number
such as ``--lr -1e-3`` is read as the option's value (and refused by its check).
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

from nnjax._cli_setup import MODELS, PRECISIONS, optimizer_names

VERBOSE = ("auto", "0", "1", "2")


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


def _positive(kind: type):
    """A positive integer, or a positive finite float (for argparse)."""
    what = "a positive integer" if kind is int else "a positive finite number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value > 0 or value == float("inf"):  # NaN fails `> 0`
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


#: The TCP ports `nnjax launch --port` takes.
MAX_PORT = 65535


def _port(text: str) -> int:
    """A TCP port in ``[1, 65535]`` (for argparse)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port in [1, {MAX_PORT}], got {text!r}")
    return value


def _rate(text: str) -> float:
    """A dropout rate in ``[0, 1)`` (for argparse)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value < 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


#: The seeds `nnjax train --seed` takes: those of a 32-bit unsigned integer.
MAX_SEED = 2**32 - 1


def _seed(text: str) -> int:
    """A seed in ``[0, 2**32 - 1]`` (for argparse)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {MAX_SEED}], got {text!r}")
    return value


#: What argparse reads as a negative number (a value, not an option): its own pattern
#: (``-5``, ``-.5``) extended by exponents, ``inf`` and ``nan``, so ``--lr -1e-3``
#: reaches the option's check (and is refused there) like ``--lr=-1e-3``.
_NEGATIVE_NUMBER = re.compile(
    r"^-(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE
)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reads ``-1e-3`` and ``-inf`` as values (subcommands too).

    Its errors are one line on stderr, like every other ``nnjax`` error: the message
    and where to read the usage, without argparse's usage block.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        """Exits with status 2 after one line: ``PROG: error: MESSAGE (see `PROG --help`)``."""
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see `{self.prog} --help`)\n")


class _Help(argparse.HelpFormatter):
    """Shows each option's default in ``--help`` (where it has one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        missing = any(action.default is v for v in (None, False, argparse.SUPPRESS))
        if not missing and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _sub(sub, name: str, help: str, description: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description, formatter_class=_Help)


def _add_train(sub) -> None:
    p = _sub(
        sub,
        "train",
        "train a model; writes a run folder",
        "Train a model and write checkpoint, preprocessing, history and plots.",
    )
    p.add_argument("--dataset", default="digits", help="a name from `nnjax data list`")
    p.add_argument("--model", choices=tuple(MODELS), default="mlp", help="the architecture")
    p.add_argument(
        "--hidden", type=_sizes, help="hidden sizes, e.g. 500,300,100 (mlp: 256,128; others: 128)"
    )
    p.add_argument("--dropout", type=_rate, default=0.0, help="dropout rate, in [0, 1)")
    p.add_argument(
        "--epochs",
        type=_positive(int),
        help="total epochs of the run (default: 10; with --resume: the run's recorded total)",
    )
    p.add_argument("--batch-size", type=_positive(int), default=32, help="examples per step")
    p.add_argument(
        "--optimizer", choices=optimizer_names(), default="adam", help="an Optax optimizer"
    )
    p.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="compute precision of fit, evaluate and predict (bfloat16: faster where the "
        "CPU has AMX or AVX512-BF16 (not Intel's without AMX), and on GPUs)",
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help=f"initialisation and data order, in [0, {MAX_SEED}]"
    )
    p.add_argument(
        "--limit", type=_positive(int), help="use only the first N examples of each split"
    )
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--out", help="run folder (default: runs/<dataset>-<model>-<time>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (an error when --out holds no checkpoint)",
    )
    p.add_argument(
        "--verbose",
        choices=VERBOSE,
        default="auto",
        help="progress: 0 none, 1 bar, 2 a line per epoch; auto: bar on a terminal",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output (--verbose 0)")


def _add_fallback(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fallback",
        action="store_true",
        help="if the newest checkpoint is damaged, use the newest intact one",
    )


def _add_run_readers(sub) -> None:
    p = _sub(
        sub,
        "evaluate",
        "evaluate a trained run on raw data",
        "Evaluate a `nnjax train` run folder on its test set, or on raw arrays, "
        "preprocessed as in training.",
    )
    p.add_argument("run", help="the run folder written by `nnjax train`")
    p.add_argument(
        "--inputs", help="raw inputs (.npy, finite values); default: the dataset's test set"
    )
    p.add_argument("--labels", help="labels of --inputs (.npy)")
    p.add_argument("--data-dir", help="folder with the dataset files")
    _add_fallback(p)

    p = _sub(
        sub,
        "predict",
        "predict raw inputs with a trained run",
        "Print the predicted class (or values) of each row of a raw .npy array, "
        "preprocessed as in training. NaN or infinite inputs are refused (the error "
        "names the first such row).",
    )
    p.add_argument("run", help="the run folder written by `nnjax train`")
    p.add_argument("inputs", help="raw inputs (.npy, finite values), e.g. uint8 images (N, 28, 28)")
    p.add_argument(
        "--output", help="also save the model's outputs to this .npy file (this exact name)"
    )
    _add_fallback(p)


def _add_tools(sub) -> None:
    p = _sub(
        sub,
        "summary",
        "print a model's layers and parameter counts",
        "Print the layer table of a model for a dataset.",
    )
    p.add_argument("--dataset", default="fashion-mnist", help="a name from `nnjax data list`")
    p.add_argument("--model", choices=tuple(MODELS), default="mlp", help="the architecture")
    p.add_argument("--hidden", type=_sizes, help="hidden sizes (mlp: 500,300,100; others: 128)")

    p = _sub(
        sub,
        "data",
        "list, fetch or verify datasets",
        "List the datasets, fetch one into the cache, or verify it.",
    )
    p.add_argument("action", choices=("list", "fetch", "verify"), help="what to do")
    p.add_argument("name", nargs="?", help="dataset name (fetch, verify)")
    p.add_argument("--data-dir", help="folder to search first")

    p = _sub(
        sub,
        "bench",
        "run a benchmark script (source checkout)",
        "Run benchmarks/bench_<name>.py; extra arguments pass on.",
    )
    p.add_argument("name", nargs="?", default="mlp", help="benchmark name")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="arguments for the script")

    p = _sub(
        sub,
        "launch",
        "run a command as N local processes of one JAX run",
        "Start N processes of CMD on this machine, joined by nnjax.distributed.initialize() "
        "(each gets the coordinator address, process count and its index in the "
        "environment); when one fails, the others are stopped. Example: "
        "nnjax launch --processes 2 -- python train.py",
    )
    p.add_argument("--processes", type=_positive(int), default=2, help="how many processes")
    p.add_argument("--port", type=_port, help="coordinator port (default: a free one)")
    p.add_argument("--timeout", type=_positive(float), help="stop every process after SECONDS")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")


def build_parser() -> argparse.ArgumentParser:
    """The ``nnjax`` argument parser (every option's default shown in ``--help``)."""
    import nnjax

    parser = _Parser(
        prog="nnjax",
        description="Train, evaluate and inspect nnjax models from the shell.",
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"nnjax {nnjax.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_run_readers(sub)
    _add_tools(sub)
    return parser
