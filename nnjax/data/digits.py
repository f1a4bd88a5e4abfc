"""scikit-learn's bundled 8x8 handwritten digits, split like a Keras dataset."""

from __future__ import annotations

import numpy as np

Split = tuple[np.ndarray, np.ndarray]

_INSTALL_HINT = (
    "load_digits needs scikit-learn, which ships the digits data; "
    "install it with `pip install nnjax[examples]` (or `pip install scikit-learn`)"
)


def _sklearn_digits():
    """Imports scikit-learn lazily and returns its ``load_digits`` function."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return sk_load_digits


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> tuple[Split, Split]:
    """Loads the 1797 8x8 digit images bundled with scikit-learn (no download).

    The split is a seeded random permutation, so it is the same on every call and
    machine for the same ``seed``.

    Args:
      test_fraction: the share of examples held out for testing, in ``(0, 1)``.
      seed: seeds the permutation that makes the split.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: uint8 images of shape ``(N, 8, 8)``
      with values 0..16 (the pixel counts of the original data) and uint8 labels 0..9
      of shape ``(N,)``; with the defaults ``N`` is 1438 for training and 359 for test.

    Raises:
      ImportError: scikit-learn is not installed (the message names
        ``pip install nnjax[examples]``).
      ValueError: ``test_fraction`` is not strictly between 0 and 1.

    Example:
      >>> (x, y), (xt, yt) = load_digits()
      >>> x.shape, x.dtype, xt.shape
      ((1438, 8, 8), dtype('uint8'), (359, 8, 8))
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction}")
    bunch = _sklearn_digits()()
    images = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = round(len(labels) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])
