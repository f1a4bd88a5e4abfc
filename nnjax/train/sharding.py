"""Where batches and training state live: a ``'data'`` mesh axis, replicated or sharded state.

Batches are split over the ``'data'`` axis of a mesh spanning the devices of every
process (each process places only its own rows). The training state is replicated,
or laid out by a :class:`StateLayout`: ``param_sharding="fsdp"`` splits every
parameter and its optimizer moments over ``'data'`` (the rule of
:func:`nnjax.distributed.partition.fsdp_spec`), and a sequence of ``(regex,
PartitionSpec)`` rules lays out each parameter path on the mesh's named axes (tensor
parallelism, :func:`nnjax.distributed.partition.rule_specs`). XLA inserts the
gathers and reduce-scatters.

Example:
  >>> import jax, numpy as np
  >>> mesh = make_mesh(jax.devices()[:1])
  >>> put_batch((np.ones((2, 4, 3)), np.zeros((2, 4))), mesh)[0].shape
  (2, 4, 3)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nnjax.distributed import arrays, partition
from nnjax.train.state import TrainState

T = TypeVar("T")
_Params = ParamSpec("_Params")

DATA_AXIS = "data"

PARAM_SHARDINGS = (None, "replicated", "fsdp")
"""What ``fit(param_sharding=...)`` accepts besides partition rules."""


def choose_devices(batch_size: int, devices: Sequence[jax.Device] | None = None) -> list:
    """The devices to shard batches over.

    With ``devices=None``: all local devices when ``batch_size`` divides evenly among
    them, else the first one; with several processes, every device of every process
    (which must divide ``batch_size``). Given devices must divide ``batch_size``.

    Example:
      >>> len(choose_devices(3, jax.devices()[:1]))
      1
    """
    if devices is None and jax.process_count() > 1:
        devices = jax.devices()
    if devices is None:
        local = jax.local_devices()
        return list(local) if batch_size % len(local) == 0 else [local[0]]
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` is empty")
    if batch_size % len(devices):
        raise ValueError(
            f"batch_size={batch_size} cannot be split evenly over {len(devices)} devices; "
            "pick a multiple of the device count or fewer devices"
        )
    return devices


def make_mesh(devices: Sequence[jax.Device]) -> Mesh:
    """A 1-D mesh over ``devices`` with the axis ``'data'``.

    Args:
      devices: the devices, in mesh order (e.g. ``jax.devices()``).

    Returns:
      A :class:`jax.sharding.Mesh` of shape ``(len(devices),)``.

    Example:
      >>> make_mesh(jax.devices()[:1]).axis_names
      ('data',)
    """
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def automatic(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis of type ``Auto`` (the same devices and axis names).

    ``fit``'s programs let XLA propagate shardings; under ``Explicit`` axes (the default
    of ``jax.make_mesh`` from jax 0.9) every array's type would carry its sharding and
    gathers such as a batch's rows would need their result's sharding spelled out.

    Example:
      >>> from jax.sharding import AxisType
      >>> mesh = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Explicit,))
      >>> automatic(mesh).axis_types == (AxisType.Auto,)
      True
    """
    kinds = getattr(mesh, "axis_types", None)
    auto = getattr(jax.sharding, "AxisType", None)
    if auto is None or kinds is None or all(k == auto.Auto for k in kinds):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(auto.Auto,) * len(kinds))


def own_mesh(fn: Callable[_Params, T]) -> Callable[_Params, T]:
    """Runs ``fn`` outside the caller's mesh context (``jax.set_mesh``), on its own meshes.

    ``fit``, ``evaluate``, ``predict`` and ``sweep`` place their arrays on meshes of
    their own (:func:`make_mesh`, or the user's ``mesh=`` made :func:`automatic`); a
    mesh the caller set for the whole program, with ``Explicit`` axes as
    ``jax.make_mesh`` makes them, would otherwise be the context of every program they
    trace, and JAX rejects arrays of one mesh under the context of another. Outside the
    caller's abstract mesh, each function then runs its programs under
    ``jax.set_mesh`` of the mesh its arrays live on.

    Typed with a ``ParamSpec``, so type checkers and IDEs see the wrapped function's
    own signature (a misspelt keyword to ``fit`` is a type error).

    Args:
      fn: the function to wrap.

    Returns:
      ``fn`` with the same signature and result, called with no abstract mesh set.

    Example:
      >>> own_mesh(lambda: jax.sharding.get_abstract_mesh().empty)()
      True
    """

    @functools.wraps(fn)
    def outside(*args: _Params.args, **kwargs: _Params.kwargs) -> T:
        if jax.sharding.get_abstract_mesh().empty:
            return fn(*args, **kwargs)
        with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((), ())):
            return fn(*args, **kwargs)

    return outside


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy on every device of ``mesh``.

    Example:
      >>> replicated(make_mesh(jax.devices()[:1])).spec == P()
      True
    """
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 1) -> NamedSharding:
    """Splits axis ``batch_axis`` over ``'data'`` (1 for stacked ``(K, B, ...)`` batches).

    Example:
      >>> batch_sharding(make_mesh(jax.devices()[:1]), 0).spec == P("data")
      True
    """
    return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def put_replicated(tree: Any, mesh: Mesh, *, copy: bool = True) -> Any:
    """Copies ``tree`` onto every device of ``mesh`` (of every process).

    It never aliases the input buffers, so donating the result leaves ``tree`` intact;
    with ``copy=False`` arrays already replicated there are returned as they are (for
    programs that do not donate).

    Example:
      >>> put_replicated({"w": np.ones(2)}, make_mesh(jax.devices()[:1]))["w"].shape
      (2,)
    """
    return arrays.put(tree, replicated(mesh), copy=copy)


def process_rows(mesh: Mesh, batch_size: int) -> slice:
    """The rows of each global batch of ``batch_size`` that this process reads and places.

    Example:
      >>> process_rows(make_mesh(jax.devices()[:1]), 8)
      slice(0, 8, None)
    """
    return arrays.process_rows(batch_sharding(mesh, 0), batch_size)


def put_batch(tree: Any, mesh: Mesh, batch_axis: int = 1, batch_size: int | None = None) -> Any:
    """Places this process's rows of a batch on ``mesh``, split along ``batch_axis``.

    In one process ``tree`` is the whole batch. With several, it holds this process's
    :func:`process_rows` and ``batch_size`` (the global batch size) is needed; the
    global batch is assembled with :func:`jax.make_array_from_process_local_data`.

    Example:
      >>> put_batch(np.ones((2, 4)), make_mesh(jax.devices()[:1])).shape
      (2, 4)
    """
    target = batch_sharding(mesh, batch_axis)
    if not arrays.is_global(target):
        return jax.device_put(tree, target)
    if batch_size is None:
        raise ValueError("put_batch: a mesh over several processes needs the global batch_size")
    return arrays.put_local(tree, target, batch_size)


class StateLayout:
    """The partition spec of every leaf of a :class:`TrainState` on ``mesh``; hashable.

    Hashable (on the mesh and the specs), so compiled steps built for one layout are
    reused by the next ``fit`` call with the same one.

    Example:
      >>> state = TrainState({"w": np.zeros((4, 2))}, (), {})
      >>> layout = state_layout(state, make_mesh(jax.devices()[:1]), "fsdp")
      >>> layout.specs.params, layout == state_layout(state, layout.mesh, "fsdp")
      ({'w': P()}, True)
    """

    def __init__(self, mesh: Mesh, specs: TrainState) -> None:
        self.mesh, self.specs = mesh, specs
        leaves, treedef = jax.tree.flatten(specs, is_leaf=lambda s: isinstance(s, P))
        self._key = (mesh, treedef, tuple(leaves))
        self._shardings: TrainState | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateLayout) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def shardings(self) -> TrainState:
        """A ``TrainState`` of :class:`~jax.sharding.NamedSharding` trees (built once)."""
        if self._shardings is None:
            self._shardings = jax.tree.map(
                lambda spec: NamedSharding(self.mesh, spec),
                self.specs,
                is_leaf=lambda s: isinstance(s, P),
            )
        return self._shardings

    def constrain(self, params: Any, opt_state: Any) -> tuple[Any, Any]:
        """``params`` and ``opt_state`` under :func:`jax.lax.with_sharding_constraint`."""
        shard = self.shardings()
        return (
            jax.lax.with_sharding_constraint(params, shard.params),
            jax.lax.with_sharding_constraint(opt_state, shard.opt_state),
        )


def _param_specs(params: Any, mesh: Mesh, param_sharding: Any) -> Any:
    if param_sharding in (None, "replicated"):
        return jax.tree.map(lambda _: P(), params)
    if param_sharding == "fsdp":
        return partition.fsdp_specs(params, int(mesh.shape[DATA_AXIS]), DATA_AXIS)
    if isinstance(param_sharding, str):
        raise ValueError(
            f"param_sharding must be None, 'replicated', 'fsdp' or a sequence of "
            f"(regex, PartitionSpec) rules, got {param_sharding!r}"
        )
    return partition.rule_specs(params, param_sharding, dict(mesh.shape))


def state_layout(state: TrainState, mesh: Mesh, param_sharding: Any = None) -> StateLayout:
    """The layout of ``state`` on ``mesh`` for ``fit(param_sharding=...)``.

    Args:
      state: the training state (arrays or shape-dtype structs).
      mesh: a mesh with a ``'data'`` axis (and any others the rules name).
      param_sharding: ``None``/``"replicated"`` (every leaf replicated), ``"fsdp"``
        (parameters split over ``'data'``: each leaf's largest dimension that the axis
        size divides; leaves without one stay replicated), or a sequence of ``(regex,
        PartitionSpec)`` rules over parameter paths like ``"layers/0/kernel"`` (first
        match wins, unmatched parameters replicated). Optimizer-state leaves follow
        the parameter they mirror (same path suffix and shape); every other leaf, and
        ``rest``, is replicated.

    Raises:
      ValueError, TypeError: an unknown ``param_sharding``, a rule matching no
        parameter, an axis not in ``mesh``, a spec that does not fit its leaf.

    Example:
      >>> state = TrainState({"w": np.zeros((4, 2))}, (), {})
      >>> state_layout(state, make_mesh(jax.devices()[:1])).specs.params
      {'w': P()}
    """
    leaves, treedef = jax.tree.flatten(state)
    key = (treedef, tuple(np.shape(a) for a in leaves), mesh, param_sharding)
    try:  # kept per structure: the specs' tree maps rebuild every NNX Variable (~4 ms a fit)
        hash(key)
    except TypeError:  # rules given as a list: derived afresh
        return _layout(state, mesh, param_sharding)
    return _kept_layout(*key)


@functools.lru_cache(maxsize=32)
def _kept_layout(treedef: Any, shapes: tuple, mesh: Mesh, param_sharding: Any) -> StateLayout:
    structs = [jax.ShapeDtypeStruct(shape, np.float32) for shape in shapes]
    return _layout(jax.tree.unflatten(treedef, structs), mesh, param_sharding)


def _layout(state: TrainState, mesh: Mesh, param_sharding: Any) -> StateLayout:
    params = _param_specs(state.params, mesh, param_sharding)
    opt_state = partition.follow_specs(state.opt_state, state.params, params)
    rest = jax.tree.map(lambda _: P(), state.rest)
    return StateLayout(mesh, TrainState(params, opt_state, rest))


def put_state(state: TrainState, layout: StateLayout) -> TrainState:
    """Places ``state`` on its mesh as ``layout`` says (never aliasing ``state``'s buffers).

    Example:
      >>> state = TrainState({"w": np.zeros((4, 2))}, (), {})
      >>> mesh = make_mesh(jax.devices()[:1])
      >>> put_state(state, state_layout(state, mesh)).params["w"].shape
      (4, 2)
    """
    return TrainState(*arrays.put(tuple(state), tuple(layout.shardings())))


@functools.lru_cache(maxsize=16)
def _replicator(mesh: Mesh) -> Any:
    return jax.jit(lambda tree: tree, out_shardings=replicated(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """``tree`` with every leaf fully replicated on ``mesh`` (an all-gather where sharded).

    Example:
      >>> replicate({"a": jax.numpy.ones(2)}, make_mesh(jax.devices()[:1]))["a"].shape
      (2,)
    """
    if all(getattr(a, "is_fully_replicated", True) for a in jax.tree.leaves(tree)):
        return tree
    return _replicator(mesh)(tree)


def to_host(tree: Any) -> Any:
    """NumPy copies of ``tree`` on every process (see :func:`nnjax.distributed.arrays.to_host`)."""
    return arrays.to_host(tree)


__all__ = [
    "DATA_AXIS",
    "PARAM_SHARDINGS",
    "StateLayout",
    "automatic",
    "batch_sharding",
    "choose_devices",
    "make_mesh",
    "own_mesh",
    "process_rows",
    "put_batch",
    "put_replicated",
    "put_state",
    "replicate",
    "replicated",
    "state_layout",
    "to_host",
]
