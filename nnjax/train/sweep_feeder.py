"""A sweep's data feeding: every member's batches, on every device of every process.

Member ``i`` of a sweep sees exactly the batches ``fit(..., seed=seeds[i])`` sees:
the rows ``epoch_index(seeds[i], epoch, N, B)`` (:mod:`nnjax.train.data`). The
batches are split over the ``'data'`` axis of the sweep's mesh, as ``fit`` splits
them; the members' state is replicated. :class:`SweepFeeder` feeds them in one of
three ways (its ``mode``):

* ``"gather"``: in-memory arrays that fit on the device, in one process: the data is
  put on the devices once (its rows padded to a size bucket,
  :func:`nnjax.train.feeder.put_rows`: sweeps over datasets of many sizes share one
  program), every member's row indices and masks once per epoch (``(M, D, K, B)``
  blocks, ``D`` that of the bucket, :func:`nnjax.train.feeder.index_chunks`), and each
  dispatch names its block; the step gathers every member's batches on the device;
* ``"members"``: memmaps, data too large for the device, and any array data of a
  multi-process run: each process reads only its block of rows of every member's
  batches (:func:`nnjax.train.sharding.process_rows`), stacks them ``(M, K, B/P, ...)``
  in a background thread and the global ``(M, K, B, ...)`` stack is assembled from
  every process's rows (:func:`jax.make_array_from_process_local_data`);
* ``"shared"``: an iterable's batches, shared by every member in the iterable's own
  order (as ``fit`` reads them; with several processes each yields its own rows).

Example:
  >>> import jax, numpy as np
  >>> from nnjax.train import sharding
  >>> from nnjax.train.data import ArraySource
  >>> src = ArraySource(np.ones((10, 2), np.float32), np.zeros(10, np.int32), batch_size=4)
  >>> feeder = SweepFeeder(src, [0, 1], k=2, mesh=sharding.make_mesh(jax.devices()[:1]))
  >>> feeder.mode, [(c.args[1].shape, c.steps) for c in feeder.epoch(0, 0)]
  ('gather', [((2, 2, 2, 4), 2), ((2, 2, 2, 4), 1)])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from nnjax.train import in_flight, sharding, size_buckets
from nnjax.train.data import ArraySource, epoch_index
from nnjax.train.feeder import (
    Chunk,
    DeviceFeeder,
    Prefetcher,
    batch_nbytes,
    default_steps,
    in_blocks,
    index_chunks,
    put_rows,
    stays_on_device,
)

MODES = ("gather", "members", "shared")
"""The ways a :class:`SweepFeeder` feeds the compiled sweep (see the module docstring)."""


def feed_mode(source: Any, mesh: Mesh) -> str:
    """``"gather"``, ``"members"`` or ``"shared"`` for ``source`` on ``mesh``.

    Example:
      >>> from nnjax.train.data import ArraySource
      >>> src = ArraySource(np.ones((4, 2)), np.zeros(4), batch_size=2)
      >>> feed_mode(src, sharding.make_mesh(jax.devices()[:1]))
      'gather'
    """
    if not isinstance(source, ArraySource):
        return "shared"
    return "gather" if stays_on_device(source, mesh) else "members"


def default_sweep_steps(k: int, source: Any, mesh: Mesh, members: int) -> int:
    """``k`` batches per dispatch, fewer where every member's stacks would be large.

    As :func:`~nnjax.train.feeder.default_steps`; in ``"members"`` mode each of the
    ``members`` has batches of its own in the stack, in ``"shared"`` mode they share one.

    Example:
      >>> from nnjax.train.data import ArraySource
      >>> src = ArraySource(np.ones((4, 2)), np.zeros(4), batch_size=2)
      >>> default_sweep_steps(8, src, sharding.make_mesh(jax.devices()[:1]), members=16)
      8
    """
    copies = members if feed_mode(source, mesh) == "members" else 1
    return default_steps(k, source, mesh, copies=copies)


class SweepFeeder:
    """Each dispatch's batches for every member, as :class:`~nnjax.train.feeder.Chunk` s.

    Args:
      source: the training source (arrays, memmaps or an iterable).
      seeds: each member's seed (its data order), ``M`` of them.
      k: batches per dispatch.
      mesh: the sweep's mesh; batches are split over its ``'data'`` axis.

    Attributes:
      mode: ``"gather"``, ``"members"`` or ``"shared"`` (the module docstring says which
        data takes which); the compiled sweep takes its batches accordingly.
      depth: dispatches that may stay queued behind the one the host waits for
        (:func:`~nnjax.train.in_flight.depth_for` the size of one dispatch's stack).
    """

    def __init__(self, source: Any, seeds: Sequence[int], k: int, mesh: Mesh) -> None:
        self.source, self.seeds, self.k, self.mesh = source, list(seeds), k, mesh
        self.mode = feed_mode(source, mesh)
        self.data = None
        self._shared = None
        self.depth = in_flight.DEPTH
        self._blocks = 0  # "gather": the index blocks of the padded rows (put_rows)
        if self.mode == "gather":
            self.data, rows = put_rows(source, mesh)
            self._blocks = size_buckets.blocks_for(rows, source.batch_size, k)
        elif self.mode == "shared":
            self._shared = DeviceFeeder(source, mesh, k, on_device=False)
            self.depth = self._shared.depth
        else:
            stack_bytes = len(self.seeds) * k * batch_nbytes(source)
            self.depth = in_flight.depth_for(stack_bytes)
        self._part = sharding.process_rows(mesh, source.batch_size)

    def _orders(self, epoch: int, shuffle: bool) -> tuple[np.ndarray, np.ndarray]:
        """Every member's ``(M, steps, B)`` row indices and masks of ``epoch``."""
        n, b = self.source.n, self.source.batch_size
        order = [epoch_index(s, epoch, n, b, shuffle=shuffle) for s in self.seeds]
        return np.stack([o[0] for o in order]), np.stack([o[1] for o in order])

    def _member_chunk(self, block: tuple[np.ndarray, np.ndarray]) -> Chunk:
        """This process's rows of every member's batches, placed as one global stack."""
        idx, mask = block
        steps = idx.shape[1]
        idx, mask = (a[:, 0] for a in in_blocks(idx, mask, self.k))  # (M, K, B), padded
        local = idx[..., self._part], mask[..., self._part]
        batch = self.source.batch(local[0].ravel(), local[1].ravel())
        batch = jax.tree.map(lambda a: a.reshape(*local[0].shape, *a.shape[1:]), batch)
        size = self.source.batch_size
        placed = sharding.put_batch(batch, self.mesh, batch_axis=2, batch_size=size)
        return Chunk((placed, steps), steps, int(local[1][0].sum()))

    def epoch(self, seed: int, epoch: int, *, shuffle: bool = True) -> Iterator[Chunk]:
        """The dispatches of one epoch (``seed`` is unused: each member has its own)."""
        del seed
        if self._shared is not None:
            yield from self._shared.epoch(0, epoch, shuffle=shuffle)
            return
        idx, mask = self._orders(epoch, shuffle)
        if self.mode == "gather":
            yield from index_chunks(self.data, idx, mask, self.k, self.mesh, blocks=self._blocks)
            return
        starts = range(0, idx.shape[1], self.k)
        blocks = ((idx[:, s : s + self.k], mask[:, s : s + self.k]) for s in starts)
        yield from Prefetcher(blocks, self._member_chunk)


__all__ = ["MODES", "SweepFeeder", "default_sweep_steps", "feed_mode"]
