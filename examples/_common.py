"""Shared parts of the example training scripts: arguments, data, timing, plots, results.

Every training example takes ``--epochs``, ``--quick`` (a tiny subset and one epoch, for
smoke tests), ``--out`` (folder for plots and ``results.json``, default
``runs/<name>``) and ``--seed``, prints what it measures and writes it as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Split = tuple[np.ndarray, np.ndarray]

#: Examples of Fashion-MNIST kept by ``--quick`` (train, test): compile time dominates.
QUICK_TRAIN, QUICK_TEST = 1024, 512


def make_parser(name: str, doc: str, *, epochs: int | None) -> argparse.ArgumentParser:
    """The argument parser every example starts from.

    Args:
      name: the example's name; ``--out`` defaults to ``runs/<name>``.
      doc: the module docstring; its first line is the description, the rest the epilog.
      epochs: the default of ``--epochs`` (``None``: each part uses its own).
    """
    first, _, rest = doc.strip().partition("\n")
    parser = argparse.ArgumentParser(
        prog=f"{name}.py",
        description=first,
        epilog=rest.strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=epochs,
        help="training epochs" + (f" (default {epochs})" if epochs else " (default: per part)"),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny subset and one epoch: a smoke test that runs in seconds",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / name,
        help=f"folder for plots and results.json (default runs/{name})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data order")
    return parser


def epochs_for(args: argparse.Namespace, default: int) -> int:
    """``--epochs`` if given, else ``default``; always 1 with ``--quick``."""
    if args.quick:
        return 1
    return default if args.epochs is None else args.epochs


def fashion_mnist(*, quick: bool = False) -> tuple[Split, Split]:
    """Fashion-MNIST as float32 images ``(N, 28, 28)`` scaled to ``[0, 1]``, int32 labels.

    Reads the files through :func:`nnjax.data.load_fashion_mnist` (``$NNJAX_DATA_DIR``
    first). With ``quick``, only the first :data:`QUICK_TRAIN` / :data:`QUICK_TEST`.
    """
    from nnjax.data import load_fashion_mnist

    (x, y), (xt, yt) = load_fashion_mnist()
    if quick:
        x, y, xt, yt = x[:QUICK_TRAIN], y[:QUICK_TRAIN], xt[:QUICK_TEST], yt[:QUICK_TEST]
    scale = lambda images: images.astype(np.float32) / np.float32(255.0)
    return (scale(x), y.astype(np.int32)), (scale(xt), yt.astype(np.int32))


def validation_split(x: np.ndarray, y: np.ndarray, size: int, seed: int = 0):
    """Splits off a random validation set: ``((x_fit, y_fit), (x_val, y_val))``.

    Args:
      x, y: the training set.
      size: the number of validation examples.
      seed: seeds the permutation.
    """
    if not 0 < size < len(x):
        raise ValueError(f"validation size {size} leaves no training or validation data")
    order = np.random.default_rng(seed).permutation(len(x))
    fit, val = order[size:], order[:size]
    return (x[fit], y[fit]), (x[val], y[val])


class Timer:
    """Wall-clock seconds of a ``with`` block, in ``timer.seconds``.

    Example:
      >>> with Timer() as t:
      ...     pass
      >>> t.seconds >= 0
      True
    """

    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def environment() -> dict[str, Any]:
    """Where the numbers were measured: device, CPU count and library versions."""
    import flax
    import jax
    import optax

    device = jax.devices()[0]
    return {
        "device": f"{device.platform}: {getattr(device, 'device_kind', '')}".strip(),
        "num_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
    }


def _jsonable(value: Any) -> Any:
    """Converts NumPy scalars/arrays and paths inside ``value`` for :func:`json.dump`."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(
    args: argparse.Namespace, name: str, results: Mapping[str, Any], **settings: Any
) -> Path:
    """Writes ``<out>/results.json``: the results, the settings and the environment.

    Args:
      args: the parsed arguments (``out``, ``quick``, ``epochs``, ``seed`` are recorded).
      name: the example's name.
      results: what was measured (accuracies, losses, wall times...).
      **settings: further settings worth recording (model, optimizer, batch size...).

    Returns:
      The path of the file written.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "example": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "settings": {"epochs": args.epochs, "seed": args.seed, **settings},
        "environment": environment(),
        "results": results,
    }
    path = out / "results.json"
    path.write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    print(f"results written to {path}")
    return path


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Saves ``fig`` as a PNG at ``path`` (creating the folder), closes it, prints where."""
    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"saved {path}")
    return path


def fit_and_evaluate(
    model,
    train: Split,
    test: Split,
    *,
    loss: str = "cross_entropy",
    metrics: Sequence[str] = ("accuracy",),
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """Trains ``model`` with :func:`nnjax.train.fit`, then evaluates it on ``test``.

    Args:
      model: a Flax NNX model.
      train: ``(x, y)`` to train on.
      test: ``(x, y)`` held out; evaluated once, after training.
      loss: the loss name.
      metrics: metric names, logged in training and measured on ``test``.
      **fit_kwargs: passed on to ``fit`` (optimizer, learning_rate, epochs, batch_size,
        validation_data, callbacks, seed...); ``verbose`` defaults to one line per epoch.

    Returns:
      ``{"test_<metric>": ..., "test_loss": ..., "train_s": wall seconds of training
      (compilation included), "epochs_run": ..., "history": per-epoch metrics}``.
    """
    from nnjax import train as nt

    fit_kwargs.setdefault("verbose", 2)
    with Timer() as timer:
        history = nt.fit(model, train, loss=loss, metrics=metrics, **fit_kwargs)
    scores = nt.evaluate(model, test, loss=loss, metrics=metrics, batch_size=1000)
    return {
        **{f"test_{name}": value for name, value in scores.items()},
        "train_s": round(timer.seconds, 1),
        "epochs_run": len(history),
        "history": history.history,
    }


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Prints ``rows`` (dicts) as an aligned text table with the given ``columns``."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v)
    cells = [list(columns), *([fmt(row.get(c, "")) for c in columns] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
