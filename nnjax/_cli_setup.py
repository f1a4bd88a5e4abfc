"""Run setup for the ``nnjax`` command: datasets, scaling, models, curves (private)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def dataset_info(name: str):
    from nnjax import data

    try:
        return data.dataset_info(name)
    except ValueError as err:
        raise CLIError(str(err)) from None


def prepare(x: np.ndarray, scale: float | None) -> np.ndarray:
    """Integer images become float32 in ``[0, 1]`` (divided by ``scale``); floats pass."""
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float32) / np.float32(scale or 1.0)
    return x.astype(np.float32)


def load_split(config: dict[str, Any]):
    """Loads, scales and (with ``limit``) subsamples the configured dataset."""
    from nnjax import data

    try:
        (x, y), (xt, yt) = data.load(config["dataset"], config.get("data_dir"))
    except (data.DatasetError, ImportError, OSError) as err:
        raise CLIError(str(err)) from None
    scale = float(x.max()) if np.issubdtype(x.dtype, np.integer) else None
    limit = config.get("limit")
    if limit:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    return (prepare(x, scale), targets(config, y)), (prepare(xt, scale), targets(config, yt))


def targets(config: dict[str, Any], y: np.ndarray) -> np.ndarray:
    """Integer class labels ``(N,)``, or float regression targets ``(N, k)``."""
    if dataset_info(config["dataset"]).num_classes:
        return y.astype(np.int32)
    return y.reshape(len(y), -1).astype(np.float32)


def build_model(config: dict[str, Any]):
    """The model named in ``config`` for its dataset's input shape and task."""
    from flax import nnx

    from nnjax import nn

    info = dataset_info(config["dataset"])
    shape = tuple(info.input_shape)
    out = info.num_classes or 1
    rngs = nnx.Rngs(config["seed"])
    hidden = tuple(config["hidden"])
    kind = config["model"]
    if kind == "mlp":
        return nn.MLP(int(np.prod(shape)), hidden, out, dropout=config["dropout"], rngs=rngs)
    if kind == "cnn":
        if len(shape) not in (2, 3) or shape[0] < 4:
            raise CLIError(f"--model cnn needs image data; {info.name} has inputs {shape}")
        return nn.CNN(
            shape, out, conv_features=(32, 64), dense=hidden, dropout=config["dropout"], rngs=rngs
        )
    # Recurrent models read images row by row: (H, W) is T=H steps of W features.
    if len(shape) != 2:
        raise CLIError(f"--model {kind} needs sequences (T, F); {info.name} has inputs {shape}")
    cls = nn.SequenceClassifier if info.num_classes else nn.SequenceRegressor
    return cls(shape[1], hidden, out, cell=kind, dropout=config["dropout"], rngs=rngs)


def loss_and_metrics(config: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    info = dataset_info(config["dataset"])
    return ("cross_entropy", ("accuracy",)) if info.num_classes else ("mse", ("mae",))


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
