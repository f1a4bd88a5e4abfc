"""Run setup for the ``nnjax`` command: datasets, preprocessing, models, curves (private)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _class_names(dataset: str) -> tuple[str, ...] | None:
    """The class names people read in `nnjax predict`; other datasets name them "0", "1"..."""
    from nnjax.data import FASHION_MNIST_CLASSES

    return {"fashion-mnist": FASHION_MNIST_CLASSES}.get(dataset)


def dataset_info(name: str):
    from nnjax import data

    try:
        return data.dataset_info(name)
    except ValueError as err:
        raise CLIError(str(err)) from None


def load_raw(config: dict[str, Any]):
    """The configured dataset as the loader gives it, ``((x, y), (x_test, y_test))``."""
    from nnjax import data

    try:
        (x, y), (xt, yt) = data.load(config["dataset"], config.get("data_dir"))
    except (data.DatasetError, ImportError, OSError) as err:
        raise CLIError(str(err)) from None
    limit = config.get("limit")
    if limit:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    return (x, y), (xt, yt)


def preprocessing_for(config: dict[str, Any], x_train: np.ndarray):
    """What maps raw inputs to the model's: recorded in the run folder for predict/evaluate.

    Integer inputs (pixels) are divided by the training set's maximum; the MLP gets its
    inputs flattened.
    """
    from nnjax.io import Preprocessing

    info = dataset_info(config["dataset"])
    integer = np.issubdtype(x_train.dtype, np.integer)
    classes = info.num_classes
    names = _class_names(info.name) or (tuple(str(i) for i in range(classes)) if classes else None)
    return Preprocessing(
        input_shape=tuple(int(n) for n in x_train.shape[1:]),
        scale=float(x_train.max()) if integer else None,
        flatten=config["model"] == "mlp",
        class_names=names,
    )


def load_split(config: dict[str, Any]):
    """``(train, test, preprocessing)``: the dataset preprocessed for the model."""
    (x, y), (xt, yt) = load_raw(config)
    prep = preprocessing_for(config, x)
    return (prep(x), targets(config, y)), (prep(xt), targets(config, yt)), prep


def targets(config: dict[str, Any], y: np.ndarray) -> np.ndarray:
    """Integer class labels ``(N,)``, or float regression targets ``(N, k)``.

    Raises:
      CLIError: class labels that are not whole numbers in ``[0, classes)`` (a cast
        would truncate 6.9 to 6 and wrap 2**32 + k to k).
    """
    classes = dataset_info(config["dataset"]).num_classes
    if not classes:
        return y.reshape(len(y), -1).astype(np.float32)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise CLIError(f"the labels must be class numbers, got dtype {y.dtype}")
    flat = y.reshape(-1)
    bad = np.flatnonzero((flat != np.floor(flat)) | (flat < 0) | (flat >= classes))
    if bad.size:
        label, name = flat[bad[0]].item(), config["dataset"]
        raise CLIError(
            f"label {label!r} (at {int(bad[0])}) is not a class of {name}: labels are whole "
            f"numbers in [0, {classes})"
        )
    return y.astype(np.int32)


def _mlp(config, info, shape, out, rngs):
    from nnjax import nn

    hidden = tuple(config["hidden"])
    return nn.MLP(int(np.prod(shape)), hidden, out, dropout=config["dropout"], rngs=rngs)


def _cnn(config, info, shape, out, rngs):
    from nnjax import nn

    if len(shape) not in (2, 3) or shape[0] < 4:
        raise CLIError(f"--model cnn needs image data; {info.name} has inputs {shape}")
    dense = tuple(config["hidden"])
    return nn.CNN(
        shape, out, conv_features=(32, 64), dense=dense, dropout=config["dropout"], rngs=rngs
    )


def _recurrent(config, info, shape, out, rngs):
    from nnjax import nn

    # Recurrent models read images row by row: (H, W) is T=H steps of W features.
    if len(shape) != 2:
        raise CLIError(
            f"--model {config['model']} needs sequences (T, F); {info.name} has inputs {shape}"
        )
    cls = nn.SequenceClassifier if info.num_classes else nn.SequenceRegressor
    return cls(
        shape[1],
        tuple(config["hidden"]),
        out,
        cell=config["model"],
        dropout=config["dropout"],
        rngs=rngs,
    )


#: The models `nnjax train --model` offers: the parser's choices come from this table.
MODELS: dict[str, Callable] = {"mlp": _mlp, "cnn": _cnn, "lstm": _recurrent, "gru": _recurrent}


def build_model(config: dict[str, Any]):
    """The model named in ``config`` for its dataset's input shape and task."""
    from flax import nnx

    info = dataset_info(config["dataset"])
    builder = MODELS.get(config["model"])
    if builder is None:
        raise CLIError(f"unknown model {config['model']!r}; known: {', '.join(MODELS)}")
    rngs = nnx.Rngs(config["seed"])
    return builder(config, info, tuple(info.input_shape), info.num_classes or 1, rngs)


def optimizer_names() -> tuple[str, ...]:
    """The optimizer names ``fit`` accepts (its own table)."""
    from nnjax.train import optimizers

    return tuple(sorted(optimizers._OPTIMIZERS))


PRECISIONS = ("float32", "bfloat16", "float16")
"""`nnjax train --precision` values (``fit``'s ``precision``; float32: its default)."""


def precision(config: dict[str, Any]) -> str | None:
    """The run's ``precision`` for ``fit``, ``evaluate`` and ``predict`` (runs before it: None)."""
    value = config.get("precision", "float32")
    return None if value == "float32" else value


def loss_and_metrics(config: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    info = dataset_info(config["dataset"])
    return ("cross_entropy", ("accuracy",)) if info.num_classes else ("mse", ("mae",))


#: The keys every run's config.json has (nnjax 0.1 on).
CONFIG_KEYS = ("dataset", "model", "hidden", "dropout", "seed")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


#: What each key of a config.json must hold: (check, what a person reads). The keys
#: after CONFIG_KEYS may be absent (or null where they are optional).
_CONFIG_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dataset": (lambda v: isinstance(v, str), "a dataset name (a string)"),
    "model": (lambda v: isinstance(v, str), "a model name (a string)"),
    "hidden": (
        lambda v: isinstance(v, list) and all(_is_int(n) and n > 0 for n in v),
        "a list of positive integers",
    ),
    "dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "epochs": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "batch_size": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "optimizer": (lambda v: isinstance(v, str), "an optimizer name (a string)"),
    "learning_rate": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "limit": (lambda v: v is None or (_is_int(v) and v > 0), "a positive integer or null"),
    "data_dir": (lambda v: v is None or isinstance(v, str), "a folder (a string) or null"),
    "precision": (lambda v: v in PRECISIONS, "one of " + ", ".join(map(repr, PRECISIONS))),
}


def _json_text(value: Any) -> str:
    """``value`` as it reads in the JSON file (``null``, ``true``, ``"x"``, ``[1]``)."""
    import json

    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_config(path: Path) -> dict[str, Any]:
    """A run's ``config.json``; a damaged one is a one-line error naming the file.

    Every key the command reads is type-checked: a wrong one is an error naming the
    file, the key, what it should hold and what it holds.
    """
    from nnjax.io import layout

    config = layout.read_json(path)
    if not isinstance(config, dict):
        raise CLIError(f"{path}: not a run configuration (a JSON object)")
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise CLIError(f"{path}: not a run configuration (no {', '.join(map(repr, missing))})")
    for key, (valid, what) in _CONFIG_TYPES.items():
        if key in config and not valid(config[key]):
            raise CLIError(
                f"{path}: {key!r} should be {what}, got {_json_text(config[key])}; "
                "the file is damaged or was edited"
            )
    return config


def load_run(run: Path, *, fallback: bool = False):
    """``(model, preprocessing, config, epoch)`` of a run folder, runs of nnjax 0.1 too.

    ``epoch`` is the 1-based number of epochs the loaded checkpoint was trained for.
    """
    from nnjax import io, train
    from nnjax.io import model as io_model

    if not (run / "config.json").is_file():
        raise CLIError(f"{run} is not a run folder of `nnjax train` (no config.json)")
    config = read_config(run / "config.json")
    try:
        if (run / io.run.FILE).is_file():
            model, meta = io_model.load_with_meta(run / "checkpoint", fallback=fallback)
            prep = io.run.read_preprocessing(run)
        else:  # a run of nnjax 0.1: rebuild from the config, scaling as it did
            model = build_model(config)
            meta = train.load_checkpoint(run / "checkpoint", model, fallback=fallback)
            prep = preprocessing_for({**config, "model": "raw"}, load_raw(config)[0][0])
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    return model, prep, config, meta["epoch"] + 1


#: The first bytes of every .npy file (``numpy.lib.format.MAGIC_PREFIX``).
_NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: str):
    """The array in the ``.npy`` file ``path``; anything else is a one-line error.

    Only numeric arrays are read (never pickled Python objects).
    """
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


def load_finite(path: str):
    """:func:`_load_npy`, refusing NaN and infinite values (naming the first bad row)."""
    array = _load_npy(path)
    if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        rows = np.atleast_1d(array)
        row = int(np.argmin(np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)))
        raise CLIError(f"{path}: row {row} holds NaN or infinite values; nnjax needs finite inputs")
    return array


def save_npy(path: str, array) -> None:
    """Writes ``array`` to exactly ``path`` (``numpy.save`` would add ``.npy`` to a name)."""
    try:
        with open(path, "wb") as file:
            np.save(file, array, allow_pickle=False)
    except OSError as err:
        raise CLIError(f"--output {path}: cannot write ({err.strerror or err})") from None


def plot_history(history: dict[str, list[float]], path: Path) -> bool:
    """Saves learning curves (every metric, train and validation) to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [k for k in history if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], "o-", label=f"train {name}")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], "s--", label=f"test {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
