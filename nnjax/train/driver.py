"""The callback driver: a read-only view of the run, and explicit requests.

Callbacks read the run through ``self.loop`` (a :class:`RunView`: model, state,
history, epoch, step counts, the logged names) and act only through requests:
:meth:`RunView.request_stop`, :meth:`RunView.set_hyperparameter`,
:meth:`RunView.restore_weights` (and :meth:`RunView.replace_state` for the engine's own
callbacks). The driver applies them between hooks, so no callback
rewrites the loop's state behind its back.

Example:
  >>> run = Run(model=None, state=None, mesh=None, history=None, seed=0)
  >>> view = RunView(run)
  >>> view.request_stop(); run.stop
  True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.distributed import arrays
from nnjax.train import optimizers, sharding
from nnjax.train.callbacks import Callback, CallbackList, Monitor
from nnjax.train.history import History

if TYPE_CHECKING:
    from flax import nnx

_STALE = object()


class Run:
    """The mutable state of one ``fit`` call (or one sweep group); only the engine writes it.

    ``state`` is a ``TrainState`` (or a sweep's state of stacked members) and
    ``history`` a :class:`History` (or anything with ``append(epoch, logs)``).

    The state is also kept as its flat list of arrays (:attr:`leaves`, in the order of
    :attr:`treedef`), which the compiled dispatch takes and returns: the engine stores a
    dispatch's result with :meth:`set_leaves`, and the structured ``state`` is rebuilt
    only when something reads it (a callback, the epoch's logs). Rebuilding a state of
    NNX variables at every dispatch cost the host about 3 us per array.

    Example:
      >>> run = Run(model=None, state=(1, {"a": 2}), mesh=None, history=None, seed=0)
      >>> run.set_leaves([3, 4])
      >>> run.state
      (3, {'a': 4})
    """

    def __init__(
        self,
        model: Any,
        state: Any,
        mesh: Any,
        history: History,
        seed: int,
        global_step: int = 0,
        *,
        resumed_from: str | None = None,
    ) -> None:
        self.model, self.mesh, self.history, self.seed = model, mesh, history, seed
        self.global_step = global_step
        self.resumed_from = resumed_from  # the checkpoints of the resumed epochs
        self.epoch = 0
        self.stop = False
        self.bad_batch = False  # the data raised (ValueError/TypeError) while read
        self.log_names: tuple[str, ...] = ()
        self._state: Any = _STALE
        self._leaves: list[Any] = []
        self._treedef: Any = None  # a PyTreeDef
        self.state = state

    @property
    def state(self) -> Any:
        """The structured state (rebuilt from :attr:`leaves` after a dispatch)."""
        if self._state is _STALE:
            self._state = jax.tree.unflatten(self._treedef, self._leaves)
        return self._state

    @state.setter
    def state(self, value: Any) -> None:
        self._leaves, self._treedef = jax.tree.flatten(value)
        self._state = value

    @property
    def leaves(self) -> list[Any]:
        """The state's arrays, in the order of :attr:`treedef`."""
        return self._leaves

    @property
    def treedef(self) -> Any:
        """The state's structure (a hashable ``PyTreeDef``: a static argument of the dispatch)."""
        return self._treedef

    def set_leaves(self, leaves: Sequence[Any]) -> None:
        """Replaces the state's arrays (same structure), as a dispatch returns them."""
        if len(leaves) != self._treedef.num_leaves:
            raise ValueError(
                f"Run.set_leaves: the state has {self._treedef.num_leaves} arrays, got "
                f"{len(leaves)}"
            )
        self._leaves, self._state = list(leaves), _STALE


class RunView:
    """What a callback sees of the run (``callback.loop``); read-only plus requests.

    The properties (``model``, ``state``, ``mesh``, ``history``, ``epoch``,
    ``global_step``, ``seed``, ``resumed_from``, ``log_names``, ``stop_training``) read
    the run; the methods request changes, applied between hooks. Once ``fit`` returns
    (or fails), ``state`` and ``model`` are ``None``: a callback kept afterwards holds
    none of the run's arrays, and still reads its history and counters. ``nnjax.train.Loop``,
    its name before nnjax 0.2, still works with a ``DeprecationWarning`` (it goes in nnjax 0.3).

    Args:
      run: the run it shows (made by ``fit``; callbacks never build one).

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax import nn, train
      >>> class Show(train.Callback):
      ...     def on_epoch_end(self, epoch, logs=None):
      ...         view = self.loop
      ...         print(type(view).__name__, view.epoch, view.global_step,
      ...               view.log_names, sorted(view.state.params))
      >>> x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int32)
      >>> _ = train.fit(nn.MLP(2, (4,), 2, rngs=nnx.Rngs(0)), (x, y), loss="cross_entropy",
      ...               epochs=2, batch_size=4, verbose=0, callbacks=[Show()])
      RunView 0 2 ('loss', 'accuracy', 'learning_rate') ['layers']
      RunView 1 4 ('loss', 'accuracy', 'learning_rate') ['layers']
    """

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def model(self) -> nnx.Module:
        """The model being trained (its weights are written back after training)."""
        return self._run.model

    @property
    def state(self) -> Any:
        """The ``TrainState`` (params, opt_state, rest) on the devices, as of now."""
        return self._run.state

    @property
    def mesh(self) -> Any:
        """The ``jax.sharding.Mesh`` the state and batches live on."""
        return self._run.mesh

    @property
    def history(self) -> History:
        """The :class:`~nnjax.train.history.History` of the epochs done so far."""
        return self._run.history

    @property
    def epoch(self) -> int:
        """The current epoch, 0-based."""
        return self._run.epoch

    @property
    def global_step(self) -> int:
        """The updates done so far in this run (counting a resumed run's earlier ones)."""
        return self._run.global_step

    @property
    def resumed_from(self) -> str | None:
        """The checkpoint folder this run resumed from (``resume_from``), else ``None``."""
        return self._run.resumed_from

    @property
    def seed(self) -> int:
        """``fit``'s ``seed``: of the data order, dropout and initial PRNG streams."""
        return self._run.seed

    @property
    def log_names(self) -> tuple[str, ...]:
        """Every name ``fit`` logs per epoch (``"loss"``, metrics, ``"val_..."``, ...)."""
        return self._run.log_names

    @property
    def stop_training(self) -> bool:
        """Whether a stop was requested; assigning ``True`` requests one (Keras style)."""
        return self._run.stop

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        if value:
            self.request_stop()

    def request_stop(self) -> None:
        """Stops training after the current epoch."""
        self._run.stop = True

    def get_hyperparameter(self, name: str) -> float | np.ndarray:
        """The current value of an optimizer hyperparameter (``"learning_rate"``).

        A Python ``float`` in ``fit``; in a ``sweep``, a NumPy array ``(M,)`` of the
        group's members' values.
        """
        value = optimizers.get_hyperparameter(self._run.state.opt_state, name)
        return float(value) if jnp.ndim(value) == 0 else np.asarray(jax.device_get(value))

    def set_hyperparameter(self, name: str, value: float | np.ndarray) -> None:
        """Sets an injected optimizer hyperparameter.

        It takes effect at the next update and never recompiles. In a ``sweep``, a
        number sets every member of the group, an ``(M,)`` array each member's.
        ``ValueError`` if the optimizer does not inject ``name``, or for a value of
        another shape.
        """
        state = self._run.state
        opt_state = optimizers.set_hyperparameter(state.opt_state, name, value)
        self._run.state = state._replace(opt_state=opt_state)

    def restore_weights(self, params: Any, rest: Any) -> None:
        """Replaces the parameters and other model state.

        Host or device pytrees of the same structure, e.g. a copy kept by
        ``EarlyStopping``. They are placed as the run's state is laid out (replicated,
        or split by ``param_sharding``), so the layout survives and the next dispatch
        compiles nothing.

        Raises:
          ValueError: ``params`` or ``rest`` differs in structure from the run's.
        """
        state = self._run.state
        params, rest = self.put_state((params, rest), like=(state.params, state.rest))
        self._run.state = state._replace(params=params, rest=rest)

    def replace_state(self, **parts: Any) -> None:
        """Replaces fields of the run's state (a request applied between hooks).

        For the engine's own callbacks, e.g. a sweep's per-member early stopping
        (``replace_state(active=..., params=...)``); ``ValueError`` for an unknown field.
        """
        state = self._run.state
        unknown = sorted(set(parts) - set(state._fields))
        if unknown:
            raise ValueError(f"replace_state: the run's state has no field {unknown}")
        self._run.state = state._replace(**parts)

    def put_state(self, tree: Any, like: Any = None) -> Any:
        """Places ``tree`` (host or device arrays) on the run's devices.

        Args:
          tree: a pytree, e.g. host copies of the parameters.
          like: a pytree of the same structure whose leaves (e.g. ``self.state.params``)
            give each leaf of ``tree`` its sharding; ``None``: replicated on the mesh.
            Leaves of ``like`` that are not JAX arrays are replicated too.

        Raises:
          ValueError: ``tree`` and ``like`` differ in structure (names both).
        """
        if like is None:
            return sharding.put_replicated(tree, self._run.mesh)
        got: Any = jax.tree.structure(tree)
        want = jax.tree.structure(like)
        if got != want:
            raise ValueError(
                f"put_state: the tree {got} does not match the structure of the run's state {want}"
            )
        return arrays.put(tree, jax.tree.map(self._sharding_of, like))

    def _sharding_of(self, leaf: Any) -> Any:
        if isinstance(leaf, jax.Array):
            return leaf.sharding
        return sharding.replicated(self._run.mesh)


def monitored_names(callbacks: Iterable[Callback]) -> list[tuple[str, str]]:
    """``(callback class, metric)`` for each callback that monitors a metric.

    Example:
      >>> from nnjax.train.callbacks import EarlyStopping
      >>> monitored_names([EarlyStopping("val_loss")])
      [('EarlyStopping', 'val_loss')]
    """
    found = []
    for cb in callbacks:
        monitor = getattr(cb, "monitor", None)
        name = monitor.monitor if isinstance(monitor, Monitor) else monitor
        if isinstance(name, str):
            found.append((type(cb).__name__, name))
    return found


def check_monitors(callbacks: Sequence[Callback], log_names: Sequence[str]) -> None:
    """Every monitored metric must be one that ``fit`` logs; checked before training.

    A name that a callback declares in :attr:`~nnjax.train.callbacks.Callback.writes_logs`
    counts for the callbacks listed after it.

    Example:
      >>> from nnjax.train.callbacks import EarlyStopping
      >>> check_monitors([EarlyStopping("loss")], ["loss"])
    """
    logged = set(log_names)
    for i, cb in enumerate(callbacks):
        for owner, name in monitored_names([cb]):
            if name not in logged:
                raise ValueError(_unlogged(owner, name, callbacks[i + 1 :], log_names))
        logged.update(cb.writes_logs)


def _unlogged(owner: str, name: str, later: Sequence[Callback], log_names: Sequence[str]) -> str:
    """The error for a monitored ``name`` that no earlier callback or ``fit`` logs."""
    writers = [type(cb).__name__ for cb in later if name in cb.writes_logs]
    if writers:
        return (
            f"{owner} monitors {name!r}, which {writers[0]} writes later in `callbacks`: "
            f"list {writers[0]} before {owner}"
        )
    return (
        f"{owner} monitors {name!r}, which fit will not log; it logs: "
        f"{', '.join(log_names)} (val_* names need validation data; a callback that "
        "writes the name declares it in `writes_logs`)"
    )


class CallbackDriver:
    """Calls the hooks of ``callbacks`` in order with the view of ``run``.

    Example:
      >>> run = Run(model=None, state=None, mesh=None, history=History(), seed=0)
      >>> driver = CallbackDriver([], run)
      >>> driver.train_begin(("loss",))
    """

    def __init__(self, callbacks: Sequence[Callback], run: Run) -> None:
        self.callbacks = CallbackList(callbacks)
        self.run = run
        self.callbacks.set_loop(RunView(run))

    def train_begin(self, log_names: Sequence[str]) -> None:
        """Checks the monitored names, then ``on_train_begin``."""
        self.run.log_names = tuple(log_names)
        check_monitors(self.callbacks.callbacks, log_names)
        self.callbacks.on_train_begin()

    def epoch_begin(self, epoch: int) -> None:
        """``on_epoch_begin``."""
        self.run.epoch = epoch
        self.callbacks.on_epoch_begin(epoch)

    def dispatch_end(self, batch: Any) -> None:
        """``on_dispatch_end`` with the updates done so far."""
        self.callbacks.on_dispatch_end(self.run.global_step, batch)

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """``on_epoch_end`` with the epoch's logs."""
        self.callbacks.on_epoch_end(epoch, logs)

    def train_end(self, logs: dict[str, float]) -> None:
        """``on_train_end``."""
        self.callbacks.on_train_end(logs)

    def close(self) -> None:
        """Hands the callbacks a view of the ended run that holds none of its arrays.

        Called when ``fit`` (or a sweep group) returns or fails: a callback the user
        keeps still reads the run's history and counters (``loop.history``,
        ``loop.epoch``, ``loop.global_step``), while ``loop.state`` and ``loop.model``
        are ``None``, so it does not keep the parameters and optimizer state alive.

        Example:
          >>> run = Run(model=None, state=(1,), mesh=None, history=History(), seed=0)
          >>> driver = CallbackDriver([], run)
          >>> driver.close()
        """
        run = self.run
        ended = Run(None, None, None, run.history, run.seed, run.global_step,
                    resumed_from=run.resumed_from)  # fmt: skip
        ended.epoch, ended.stop, ended.log_names = run.epoch, run.stop, run.log_names
        self.callbacks.set_loop(RunView(ended))


__all__ = ["CallbackDriver", "Run", "RunView", "check_monitors", "monitored_names"]
