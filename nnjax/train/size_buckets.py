"""Size buckets for device-resident data: one compiled program for many dataset sizes.

``fit``'s (and a sweep's) train dispatch and its validation gather their batches from
array data put on the device once (:class:`~nnjax.train.feeder.DeviceFeeder`); the
program's input shapes are the data's ``(rows, ...)`` and the epoch's ``(D, K, B)``
index blocks. Were ``rows`` the dataset's ``N``, every new ``N`` (each point of a
learning curve, each validation size) would compile the whole step again (about a
second for a small MLP on a CPU) and keep its program in memory for good. So the rows
are padded to :func:`bucket` ``(N)`` (zeros, which no batch indexes: batches name only
real rows, and padded batch slots name real rows under mask 0), and ``D`` to the
blocks of that many rows (:func:`blocks_for`): every ``N`` of a bucket runs one program.

The buckets keep three significant bits: ``4, 5, 6, 7`` times a power of two. So the
padding is under a quarter of the data (from ``2**e + 1`` rows to ``1.25 * 2**e``), and
sizes from ``N`` to ``2 N`` share at most 4 programs. Powers of two (one program per
doubling) would double the device copy in the worst case, and its transfer at every
``fit``; a quarter bounds both.

Example:
  >>> [bucket(n) for n in (1, 7, 8, 9, 300, 320, 321, 1000, 1400)]
  [1, 7, 8, 10, 320, 320, 384, 1024, 1536]
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

BITS = 3
"""Significant bits a bucket keeps: the padding stays under ``2 ** -(BITS - 1)`` of the rows."""


def bucket(n: int) -> int:
    """The smallest ``m * 2**e >= n`` with ``m < 2**BITS``: the rows ``n`` are padded to.

    Example:
      >>> bucket(544), bucket(640), bucket(641)
      (640, 640, 768)
    """
    step = 1 << max(int(n).bit_length() - BITS, 0)
    return -(-int(n) // step) * step


def blocks_for(rows: int, batch_size: int, k: int) -> int:
    """Dispatches of ``k`` batches of ``batch_size`` that ``rows`` examples fill.

    The ``D`` of an epoch's ``(D, K, B)`` index blocks
    (:func:`nnjax.train.feeder.in_blocks`) for a dataset of ``rows`` examples.

    Example:
      >>> blocks_for(320, 16, 8), blocks_for(300, 16, 8)
      (3, 3)
    """
    steps = -(-rows // batch_size)
    return -(-steps // k)


def pad_rows(tree: Any, rows: int) -> Any:
    """Every ``(N, ...)`` leaf of ``tree`` as ``(rows, ...)``, with zeros after its ``N`` rows.

    A leaf of ``rows`` rows already is returned as it is (no copy).

    Example:
      >>> pad_rows((np.ones((2, 3)), np.arange(2)), 4)[1].tolist()
      [0, 1, 0, 0]
    """

    def pad(a: Any) -> Any:
        if len(a) == rows:
            return a
        out = np.zeros((rows, *np.shape(a)[1:]), np.asarray(a).dtype)
        out[: len(a)] = a
        return out

    return jax.tree.map(pad, tree)


__all__ = ["BITS", "blocks_for", "bucket", "pad_rows"]
