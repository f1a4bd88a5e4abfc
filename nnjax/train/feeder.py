"""The device feeder: gets each dispatch's batches onto the devices ahead of the step.

In-memory arrays that fit on the device are put there once (replicated, their rows
padded to a size bucket, :mod:`nnjax.train.size_buckets`: datasets of many sizes share
one compiled step), each epoch's row indices and masks once per epoch
(:func:`in_blocks`, as many blocks for every size of the bucket), and each dispatch
names its block of ``K`` batches by number; the step gathers its batches on the device.
Everything else (memmaps, iterables, and any data of a multi-process run, where each
process reads only its rows of each batch) is read, stacked ``(K, B, ...)`` and
transferred by a background thread into a bounded queue (:class:`Prefetcher`), so the
step never waits on the host. With several processes the global ``(K, B, ...)`` stacks
are assembled from every process's rows (:func:`jax.make_array_from_process_local_data`).

Example:
  >>> import jax, numpy as np
  >>> from nnjax.train import sharding
  >>> from nnjax.train.data import ArraySource
  >>> src = ArraySource(np.ones((10, 2), np.float32), np.zeros(10, np.int32), batch_size=4)
  >>> feeder = DeviceFeeder(src, sharding.make_mesh(jax.devices()[:1]), k=2)
  >>> [chunk.steps for chunk in feeder.epoch(seed=0, epoch=0)]
  [2, 1]
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from nnjax.train import in_flight, sharding, size_buckets
from nnjax.train.data import ArraySource, Batch

#: In-memory data up to this size is put on the device once (when no memory limit is known).
DEVICE_DATA_BYTES = 1 << 30


class Prefetcher:
    """Runs ``fn`` over ``items`` in a background thread, ``depth`` results ahead.

    Iterating yields the results in order; an exception in the thread is re-raised
    here; :meth:`close` (or the end of iteration) stops the thread.

    Example:
      >>> list(Prefetcher(range(4), lambda i: i * i))
      [0, 1, 4, 9]
    """

    _END = object()

    def __init__(self, items: Iterable, fn: Callable, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(iter(items), fn), daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, items: Iterator, fn: Callable) -> None:
        try:
            for item in items:
                if not self._put((True, fn(item))):
                    return
        except BaseException as err:  # handed to the consumer
            self._put((False, err))
            return
        self._put((True, self._END))

    def __iter__(self) -> Iterator:
        try:
            while True:
                ok, value = self._queue.get()
                if not ok:
                    raise value
                if value is self._END:
                    return
                yield value
        finally:
            self.close()

    def close(self) -> None:
        """Stops the background thread.

        Waits a second at most: a thread inside a slow ``next`` of the user's iterator
        ends after that read (:mod:`nnjax.train.one_reader` makes the next run wait for
        it), and the error that stopped the run is raised meanwhile.
        """
        self._stop.set()
        self._thread.join(timeout=1)


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One dispatch's input.

    ``args`` for the compiled step after the state, ``steps`` real updates in it,
    ``examples`` real examples (of this process, in a multi-process run).
    """

    args: tuple
    steps: int
    examples: int


def stacked_blocks(batches: Iterable[Batch], k: int) -> Iterator[tuple[Batch, int]]:
    """Host batches as ``((K, B, ...) block, steps)`` pairs of up to ``k`` batches.

    Each batch is copied into its block's slot as it arrives, before the next is read:
    an iterable may hand over the same buffer refilled for every batch (nnjax keeps no
    reference to it), and no batch is copied twice. A last block of fewer batches is
    padded with copies of its last batch under mask 0, so weight 0.

    Example:
      >>> b = Batch(np.ones((2, 3)), np.zeros(2), np.ones(2), np.ones(2))
      >>> [(s.x.shape, s.mask.tolist(), n) for s, n in stacked_blocks([b], 2)]
      [((2, 2, 3), [[1.0, 1.0], [0.0, 0.0]], 1)]
    """
    block: list[np.ndarray] = []
    treedef, n = None, 0
    for batch in batches:
        leaves, treedef = jax.tree.flatten(batch)
        if not block:
            block = [np.empty((k, *a.shape), a.dtype) for a in leaves]
        for slot, a in zip(block, leaves, strict=True):
            slot[n] = a
        n += 1
        if n == k:
            yield jax.tree.unflatten(treedef, block), k
            block, n = [], 0
    if n:
        for slot in block:
            slot[n:] = slot[n - 1]
        stacked = jax.tree.unflatten(treedef, block)
        stacked.weight[n:] = 0
        stacked.mask[n:] = 0
        yield stacked, n


def in_blocks(
    idx: np.ndarray, mask: np.ndarray, k: int, blocks: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """An epoch's ``(..., steps, B)`` row indices and masks as ``(..., D, k, B)`` blocks.

    ``D = max(ceil(steps / k), blocks)``: block ``j`` holds the batches of dispatch
    ``j``; the last is padded with batches of row 0 under mask 0 (no update), and so
    are the blocks past it (``blocks``: one shape for every dataset size of a bucket,
    :func:`nnjax.train.size_buckets.blocks_for`; never dispatched). Indices as int32,
    masks as float32.

    Example:
      >>> idx, mask = in_blocks(np.arange(6).reshape(3, 2), np.ones((3, 2)), 2)
      >>> idx.shape, idx[1].tolist(), mask[1].tolist()
      ((2, 2, 2), [[4, 5], [0, 0]], [[1.0, 1.0], [0.0, 0.0]])
      >>> in_blocks(np.arange(6).reshape(3, 2), np.ones((3, 2)), 2, blocks=3)[0].shape
      (3, 2, 2)
    """
    steps, lead = idx.shape[-2], idx.shape[:-2]
    d = max(-(-steps // k), blocks)
    pad = [(0, 0)] * len(lead) + [(0, d * k - steps), (0, 0)]
    shape = (*lead, d, k, idx.shape[-1])
    blocked = lambda a, dtype: np.pad(a, pad).astype(dtype).reshape(shape)
    return blocked(idx, np.int32), blocked(mask, np.float32)


def array_blocks(
    source: ArraySource,
    seed: int,
    epoch: int,
    k: int,
    *,
    shuffle: bool = True,
    part: slice | None = None,
) -> Iterator[tuple[Batch, int]]:
    """An array source's epoch as ``(batch, steps)`` host blocks of ``k`` batches.

    Each block's rows (``part`` of every batch's) are gathered at once into
    ``(k, B, ...)`` leaves, one read and one allocation per dispatch instead of one per
    batch and a stack (a 12800 x 784 float32 memmap at batch 256: 48 -> 31 ms of host
    time per epoch, 2-core Zen 4). The last block is padded as :func:`in_blocks` pads
    it: row 0 under mask 0, so weight 0.

    Example:
      >>> src = ArraySource(np.arange(10.0).reshape(5, 2), np.arange(5), batch_size=2)
      >>> [(b.x.shape, b.mask.tolist(), n) for b, n in array_blocks(src, 0, 0, 2, shuffle=False)]
      [((2, 2, 2), [[1.0, 1.0], [1.0, 1.0]], 2), ((2, 2, 2), [[1.0, 0.0], [0.0, 0.0]], 1)]
    """
    idx, mask = source.epoch(seed, epoch, shuffle=shuffle)
    if part is not None:
        idx, mask = idx[:, part], mask[:, part]
    steps, width = idx.shape
    blocks, masks = in_blocks(idx, mask, k)
    for j in range(len(blocks)):
        flat = source.batch(blocks[j].reshape(-1), masks[j].reshape(-1))
        yield jax.tree.map(lambda a: a.reshape(k, width, *a.shape[1:]), flat), min(k, steps - j * k)


def index_chunks(
    data: Any, idx: np.ndarray, mask: np.ndarray, k: int, mesh: Mesh, *, blocks: int = 0
) -> Iterator[Chunk]:
    """The chunks of an epoch fed from device-resident ``data``: ``(data, idx, mask, j, n)``.

    The epoch's ``(..., steps, B)`` row indices and masks are put on ``mesh`` once, as
    :func:`in_blocks` of at least ``blocks`` blocks (split over its ``'data'`` axis;
    only the real ones are dispatched), and dispatch ``j`` names its
    block: a transfer per dispatch cost more host time than a small model's update
    (60-70 us of ``jax.device_put`` for two ``(1, 32)`` arrays, 2-core AMD EPYC). A
    leading axis (a sweep's members) has the same example count in every row; a chunk's
    ``examples`` counts the first.

    Example:
      >>> mesh = sharding.make_mesh(jax.devices()[:1])
      >>> idx, mask = np.arange(6).reshape(3, 2), np.ones((3, 2), np.float32)
      >>> [(c.args[3], c.steps, c.examples) for c in index_chunks(None, idx, mask, 2, mesh)]
      [(0, 2, 4), (1, 1, 2)]
    """
    idx_blocks, mask_blocks = in_blocks(idx, mask, k, blocks)
    placed = sharding.put_batch((idx_blocks, mask_blocks), mesh, batch_axis=idx_blocks.ndim - 1)
    steps, lead = idx.shape[-2], int(np.prod(idx.shape[:-2]))
    for j in range(-(-steps // k)):
        n = min(k, steps - j * k)
        first = mask_blocks[..., j, :, :].reshape(lead, -1)[0]
        yield Chunk((data, *placed, j, n), n, int(first.sum()))


def fits_on_device(nbytes: int, device: jax.Device) -> bool:
    """Whether ``nbytes`` of data may stay on ``device``.

    The limit is a quarter of its memory, or :data:`DEVICE_DATA_BYTES` when it reports
    none.

    Example:
      >>> fits_on_device(1000, jax.devices()[0])
      True
    """
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    limit = (stats or {}).get("bytes_limit")
    return nbytes <= (limit // 4 if limit else DEVICE_DATA_BYTES)


def stays_on_device(source: Any, mesh: Mesh) -> bool:
    """Whether ``source``'s data go to the devices once: in-memory arrays that fit there.

    Only in a one-process run; memmaps and iterables are read and stacked per dispatch.

    Example:
      >>> src = ArraySource(np.ones((4, 2)), np.zeros(4), batch_size=2)
      >>> stays_on_device(src, sharding.make_mesh(jax.devices()[:1]))
      True
    """
    return (
        isinstance(source, ArraySource)
        and not source.is_memmap()
        and jax.process_count() == 1
        and fits_on_device(source.nbytes(), mesh.devices.flat[0])
    )


def put_rows(source: ArraySource, mesh: Mesh) -> tuple[tuple, int]:
    """``source``'s ``(x, y, weight)`` replicated on ``mesh``, and the rows they hold.

    The rows are padded with zeros to :func:`nnjax.train.size_buckets.bucket` ``(N)``
    (at most a quarter more), so every dataset size of the bucket compiles one step;
    to ``N`` alone where the padded copy would not fit (:func:`fits_on_device`).

    Example:
      >>> src = ArraySource(np.ones((9, 2), np.float32), np.zeros(9, np.int32), batch_size=4)
      >>> (x, y, weight), rows = put_rows(src, sharding.make_mesh(jax.devices()[:1]))
      >>> rows, x.shape, weight[8:].tolist()  # 9 rows padded to 10, the 10th weighing 0
      (10, (10, 2), [1.0, 0.0])
    """
    rows = size_buckets.bucket(source.n)
    if not fits_on_device(source.nbytes() * rows // max(source.n, 1), mesh.devices.flat[0]):
        rows = source.n
    data = size_buckets.pad_rows(source.device_arrays(), rows)
    return sharding.put_replicated(data, mesh), rows


def batch_nbytes(source: Any) -> int:
    """Bytes of one batch of ``source`` as the feeder stacks it (inputs, labels, weights).

    An :class:`~nnjax.train.data.ArraySource`'s from its arrays' sizes (nothing read);
    an iterable's from its first batch.

    Example:
      >>> batch_nbytes(ArraySource(np.ones((10, 3), np.float32), np.zeros(10), batch_size=4))
      112
    """
    if isinstance(source, ArraySource):
        weight = source.weight[:1].nbytes  # one row's weights: one, or one per position
        per_row = source.nbytes() // max(source.n, 1) + weight + np.dtype(np.float32).itemsize
        return per_row * source.batch_size
    return in_flight.nbytes(source.example())


def default_steps(
    k: int, source: Any, mesh: Mesh, *, copies: int = 1, on_device: bool | None = None
) -> int:
    """``k`` batches per dispatch, fewer where stacks of ``k`` would be large.

    Data that stay on the device (``on_device``, default :func:`stays_on_device`) keep
    ``k``; host-stacked batches (``copies`` of each, a sweep's members) are cut to
    :data:`~nnjax.train.in_flight.DISPATCH_BYTES` a dispatch
    (:func:`~nnjax.train.in_flight.steps_within`).

    Example:
      >>> src = ArraySource(np.ones((64, 4), np.float32), np.zeros(64), batch_size=32)
      >>> mesh = sharding.make_mesh(jax.devices()[:1])
      >>> default_steps(8, src, mesh)  # kept on the device: each dispatch names rows
      8
      >>> from nnjax.train.iterable_source import IterableSource
      >>> fed = IterableSource([(np.ones((32, 3 << 18), np.float32), np.zeros(32))])
      >>> default_steps(8, fed, mesh)  # 96 MiB batches stacked on the host: 2
      2
    """
    if stays_on_device(source, mesh) if on_device is None else on_device:
        return k
    return in_flight.steps_within(k, copies * batch_nbytes(source))


class DeviceFeeder:
    """Turns a data source into per-dispatch :class:`Chunk` s of ``k`` batches on ``mesh``.

    Args:
      source: an :class:`~nnjax.train.data.ArraySource` or ``IterableSource``.
      mesh: batches are sharded over its ``'data'`` axis.
      k: batches per dispatch.
      on_device: keep array data on the device and gather there (default:
        :func:`stays_on_device`).

    Attributes:
      gather: whether the data stay on the device (each chunk names rows of it), their
        rows padded to a size bucket (:func:`put_rows`).
      blocks: the ``D`` of each epoch's ``(D, K, B)`` index blocks when gathering: that
        of the padded rows, so the same for every dataset size of their bucket.
      depth: dispatches that may stay queued behind the one the host waits for
        (:func:`~nnjax.train.in_flight.depth_for` the size of a stack of ``k`` batches).
    """

    def __init__(self, source: Any, mesh: Mesh, k: int, *, on_device: bool | None = None):
        self.source, self.mesh, self.k = source, mesh, k
        self.part = sharding.process_rows(mesh, source.batch_size)
        if on_device is None:
            on_device = stays_on_device(source, mesh)
        self.gather = bool(on_device)
        self.data = None
        self.depth = in_flight.DEPTH
        self.blocks = 0
        if self.gather:
            self.data, rows = put_rows(source, mesh)
            self.blocks = size_buckets.blocks_for(rows, source.batch_size, k)
        else:
            self.depth = in_flight.depth_for(k * batch_nbytes(source))

    def _put_block(self, block: tuple[Batch, int]) -> Chunk:
        stacked, steps = block
        batch = sharding.put_batch(stacked, self.mesh, batch_size=self.source.batch_size)
        return Chunk((batch, steps), steps, int(stacked.mask.sum()))

    def epoch(self, seed: int, epoch: int, *, shuffle: bool = True) -> Iterator[Chunk]:
        """The dispatches of one epoch, in the source's order."""
        if self.gather:
            idx, mask = self.source.epoch(seed, epoch, shuffle=shuffle)
            yield from index_chunks(self.data, idx, mask, self.k, self.mesh, blocks=self.blocks)
            return
        if isinstance(self.source, ArraySource):  # a memmap, or any data of several processes
            blocks = array_blocks(self.source, seed, epoch, self.k, shuffle=shuffle, part=self.part)
            yield from Prefetcher(blocks, self._put_block)
            return
        batches = self.source.batches(seed, epoch, shuffle=shuffle, part=self.part)
        yield from Prefetcher(stacked_blocks(batches, self.k), self._put_block)


__all__ = [
    "Chunk",
    "DeviceFeeder",
    "Prefetcher",
    "array_blocks",
    "batch_nbytes",
    "default_steps",
    "fits_on_device",
    "in_blocks",
    "index_chunks",
    "put_rows",
    "stacked_blocks",
    "stays_on_device",
]
