"""An autoencoder with a 2-D code on Fashion-MNIST: latent map, reconstructions, MSE.

A dense autoencoder (nnjax.nn.Autoencoder, 784-512-256-2-256-512-784, ReLU, sigmoid
output) or, with --conv, a convolutional one (nnjax.nn.ConvAutoencoder) learns to
reproduce the images through a 2-number bottleneck, trained with fit on the MSE
between input and output. For reference it also reports the test MSE of the mean image
and of PCA with 2 components (the best linear 2-D code). Saved in --out:

  latent_space.png     the test images' codes, coloured by class
  reconstructions.png  test images (top) and their reconstructions (bottom)
  latent_grid.png      images decoded from a regular grid over the code plane

    python examples/autoencoder.py --out runs/autoencoder
"""

from __future__ import annotations

import argparse

import _common
import jax
import numpy as np
from flax import nnx

from nnjax import nn, train
from nnjax.data import FASHION_MNIST_CLASSES

NAME = "autoencoder"


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=20)
    parser.add_argument("--conv", action="store_true", help="convolutional autoencoder")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (128)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step (1e-3)")
    return parser.parse_args(argv)


def build(conv: bool, seed: int) -> nnx.Module:
    """The dense or convolutional autoencoder with a 2-D code."""
    rngs = nnx.Rngs(seed)
    if conv:
        return nn.ConvAutoencoder((28, 28), (32, 64), latent=2, rngs=rngs)
    return nn.Autoencoder(784, (512, 256), 2, rngs=rngs)


def encode(model: nnx.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The codes ``(N, 2)`` of images ``x``, in jitted batches."""
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda state, xb: nnx.merge(graphdef, state).encode(xb))
    return np.concatenate(
        [np.asarray(fn(state, x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def decode(model: nnx.Module, z: np.ndarray) -> np.ndarray:
    """Images ``(N, 28, 28)`` decoded from codes ``z (N, 2)``."""
    return np.asarray(model.decode(z)).reshape(len(z), 28, 28)


def baselines(x: np.ndarray, xt: np.ndarray, k: int = 2) -> dict[str, float]:
    """Test MSE of two references: the mean training image, and PCA with ``k`` components
    (the best linear ``k``-D code) fitted on the training images."""
    flat, flat_t = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    mean = flat.mean(axis=0)
    centered = flat - mean
    _, vectors = np.linalg.eigh(centered.T @ centered)  # ascending eigenvalues
    top = vectors[:, -k:]
    proj = (flat_t - mean) @ top @ top.T + mean
    return {
        "mean_image_mse": float(np.mean((flat_t - mean) ** 2)),
        f"pca{k}_mse": float(np.mean((flat_t - proj) ** 2)),
    }


def plot_latent(codes: np.ndarray, labels: np.ndarray, path) -> None:
    """Scatter of the codes, one colour per class."""
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(8, 7))
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(FASHION_MNIST_CLASSES):
        pts = codes[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.6, color=cmap(c), label=name)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("Fashion-MNIST test images in the 2-D code space")
    ax.legend(markerscale=4, fontsize=8, loc="best")
    _common.save_figure(fig, path)


def plot_images(rows: list[np.ndarray], titles: list[str], path, size: float = 1.0) -> None:
    """A grid of grey images, one list of images per row, each row titled."""
    plt = _common.pyplot()
    cols = len(rows[0])
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(size * cols, size * len(rows) + 0.3), squeeze=False
    )
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c, image in enumerate(images):
            axes[r, c].imshow(image, cmap="gray_r", vmin=0.0, vmax=1.0)
            axes[r, c].axis("off")
        if title:
            axes[r, 0].set_title(title, loc="left", fontsize=9)
    _common.save_figure(fig, path)


def latent_grid(model: nnx.Module, codes: np.ndarray, n: int = 12) -> list[np.ndarray]:
    """Rows of images decoded on an ``n x n`` grid spanning the central 98% of ``codes``."""
    lo, hi = np.percentile(codes, [1, 99], axis=0)
    z0, z1 = np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n)
    grid = np.stack(np.meshgrid(z0, z1), axis=-1).reshape(-1, 2).astype(np.float32)
    images = decode(model, grid)
    return [images[i * n : (i + 1) * n] for i in range(n)]


def main(argv=None) -> dict:
    """Trains the autoencoder, reports the test reconstruction MSE, saves the plots."""
    args = parse_args(argv)
    (x, _), (xt, yt) = _common.fashion_mnist(quick=args.quick)
    model = build(args.conv, args.seed)
    print(f"{type(model).__name__}: {nn.count_params(model):,} parameters")
    result = _common.fit_and_evaluate(
        model,
        (x, x),
        (xt, xt),
        loss="mse",
        metrics=(),
        optimizer="adam",
        learning_rate=args.learning_rate,
        epochs=_common.epochs_for(args, args.epochs),
        batch_size=args.batch_size,
        seed=args.seed,
    )
    mse = result["test_loss"]
    print(f"test reconstruction MSE: {mse:.4f} (per pixel, images in [0, 1])")
    reference = baselines(x, xt)
    print(", ".join(f"{name}: {value:.4f}" for name, value in reference.items()))
    codes = encode(model, xt)
    plot_latent(codes, yt, args.out / "latent_space.png")
    shown = xt[:12]
    recon = train.predict(model, shown)
    plot_images(
        [shown, recon], ["test images", "reconstructions"], args.out / "reconstructions.png"
    )
    plot_images(latent_grid(model, codes), [""] * 12, args.out / "latent_grid.png", size=0.7)
    summary = {"test_reconstruction_mse": mse, "baselines": reference, **result}
    _common.write_results(
        args,
        NAME,
        summary,
        model=type(model).__name__,
        params=nn.count_params(model),
        latent=2,
        batch_size=args.batch_size,
        optimizer=f"adam({args.learning_rate})",
    )
    return summary


if __name__ == "__main__":
    main()
