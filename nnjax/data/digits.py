"""scikit-learn's bundled 8x8 handwritten digits, split like a Keras dataset."""

from __future__ import annotations

import numpy as np

from nnjax.data._checks import finite_number
from nnjax.data._checks import seed as check_seed

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
      test_fraction: the share of examples held out for testing, in ``(0, 1)``; both
        splits must get at least one of the 1797 examples (so roughly
        ``0.0003 <= test_fraction <= 0.9997``).
      seed: seeds the permutation that makes the split, a non-negative int.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: uint8 images of shape ``(N, 8, 8)``
      with values 0..16 (the pixel counts of the original data) and uint8 labels 0..9
      of shape ``(N,)``; with the defaults ``N`` is 1438 for training and 359 for test.

    Raises:
      ImportError: scikit-learn is not installed (the message names
        ``pip install nnjax[examples]``).
      ValueError: ``test_fraction`` is not strictly between 0 and 1, or so close to 0
        or 1 that the test or training split would be empty; ``seed`` is not a
        non-negative int.
      TypeError: ``test_fraction`` is not a real number.

    Example:
      >>> (x, y), (xt, yt) = load_digits()
      >>> x.shape, x.dtype, xt.shape
      ((1438, 8, 8), dtype('uint8'), (359, 8, 8))
    """
    fraction = finite_number("load_digits", "test_fraction", test_fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = check_seed("load_digits", seed)
    bunch = _sklearn_digits()()
    images = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    n_test = round(len(labels) * fraction)
    if not 0 < n_test < len(labels):
        split = "test" if n_test == 0 else "training"
        raise ValueError(
            f"load_digits: test_fraction={test_fraction!r} leaves the {split} split empty "
            f"({n_test} of {len(labels)} examples held out for testing); use a fraction "
            f"between {1 / len(labels):.4f} and {1 - 1 / len(labels):.4f}"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])
