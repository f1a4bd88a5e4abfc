"""``fit``: a short orchestration of named parts.

1. the data source (:mod:`nnjax.train.data`): arrays, memmaps or iterables, padded and
   masked batches, one data-order rule;
2. the device feeder (:mod:`nnjax.train.feeder`): data on the device once, or a
   background prefetcher;
3. the compiled step (:mod:`nnjax.train.step`, :mod:`nnjax.train.compiled`);
4. the callback driver (:mod:`nnjax.train.driver`) and the epoch loop
   (:mod:`nnjax.train.engine`).

Guarantees (CPU, same shapes and devices): the same ``seed`` gives bitwise the same
parameters; a run resumed with ``resume_from`` from the checkpoint of epoch ``k`` ends
bitwise where the uninterrupted run ends (each epoch's data order is a function of
``(seed, epoch)``, and the checkpoint carries optimizer state and dropout RNG state),
with the built-in callbacks (``EarlyStopping`` and ``ReduceLROnPlateau`` replay their
counters from the resumed history); a user's callback that keeps state of its own
between epochs restarts it.
Sharded runs match unsharded ones up to floating-point reassociation (allclose).

Several processes (after :func:`nnjax.distributed.initialize`): the same call trains
over every device of every process. Each process reads only its rows of each global
batch, the global batches are assembled with
:func:`jax.make_array_from_process_local_data`, the loss and metrics are reduced over
the global batch (the same values as one process on the same batches), and only
process 0 prints. ``param_sharding`` lays out parameters and optimizer state
(:func:`nnjax.train.sharding.state_layout`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import optax
from flax import nnx
from jax.sharding import Mesh

from nnjax import losses
from nnjax._deprecation import REMOVED_IN, user_stacklevel
from nnjax.train import (
    agreement,
    checkpoint,
    compiled,
    host_memory,
    model_call,
    optimizers,
    resume,
    setup,
    sharding,
    step,
)
from nnjax.train import validation as checks
from nnjax.train.callbacks import Callback, as_callbacks
from nnjax.train.data_argument import data_as_one_argument
from nnjax.train.driver import CallbackDriver, Run, RunView
from nnjax.train.engine import NonFiniteLossError, Plan, train_into
from nnjax.train.eval_blocks import block_feeder
from nnjax.train.evaluate import divisible, evaluate_source
from nnjax.train.feeder import DeviceFeeder, default_steps
from nnjax.train.history import History
from nnjax.train.interrupts import holding_interrupts
from nnjax.train.progress import resolve_verbose
from nnjax.train.state import TrainState

DEFAULT_STEPS_PER_DISPATCH = compiled.DEFAULT_STEPS_PER_DISPATCH
"""Updates ``fit`` fuses into one dispatch (``steps_per_dispatch=None``), every model.

See :func:`~nnjax.train.compiled.steps_per_dispatch_for`.
"""

#: ``fit``'s learning rate for a named optimizer or factory when none is given.
DEFAULT_LEARNING_RATE = 1e-3

if TYPE_CHECKING:  # type checkers see the old name; `__getattr__` serves it at run time
    Loop = RunView
else:

    def __getattr__(name: str) -> Any:
        """``Loop``, the old name of :class:`RunView`, with a ``DeprecationWarning`` (PEP 562).

        Also serves ``nnjax.train.Loop``. A module ``__getattr__`` seen by type checkers
        would make every misspelt name of the module type-check, hence the split above.
        """
        if name == "Loop":
            warnings.warn(
                f"nnjax.train.Loop is deprecated and will be removed in {REMOVED_IN}; use "
                "nnjax.train.RunView (the same class)",
                DeprecationWarning,
                stacklevel=user_stacklevel(),
            )
            return RunView
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gathering(train_fn: Callable, mesh: Mesh) -> Callable:
    """``train_fn`` whose logs are replicated on every device (several processes).

    So every process can read them (per-example AUC statistics, sharded over the batch).
    """
    if jax.process_count() == 1:
        return train_fn

    def run(*args):
        leaves, logs = train_fn(*args)
        return leaves, sharding.replicate(logs, mesh)

    return run


def _learning_rate(optimizer: Any, learning_rate: float | None) -> float | None:
    """The learning rate to inject (checked), or None for an Optax transformation."""
    if not isinstance(optimizer, optax.GradientTransformation | optax.MultiSteps):
        rate = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
        return optimizers.check_learning_rate(rate)
    if learning_rate is not None:
        raise ValueError(
            f"fit got learning_rate={learning_rate!r} and an Optax transformation, which "
            "carries its own rate (it would be ignored); pass the factory and the rate "
            "(optimizer=optax.sgd, learning_rate=...) or set it in the transformation"
        )
    return None


@sharding.own_mesh
@host_memory.retaining  # XLA:CPU: each step's temporaries reused, not re-faulted
@holding_interrupts
@data_as_one_argument  # Keras's fit(x, y) habit, named
def fit(
    model: nnx.Module,
    data: Any,
    *,
    loss: losses.LossSpec | None = None,
    loss_fn: Callable | None = None,
    optimizer: str | Callable | optax.GradientTransformation | optax.MultiSteps = "adam",
    learning_rate: float | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Any = None,
    validation_split: float = 0.0,
    metrics: Any = None,
    callbacks: Sequence[Callback] | None = (),
    seed: int = 0,
    precision: str | None = None,
    accumulate_steps: int = 1,
    remat: bool = False,
    steps_per_epoch: int | None = None,
    class_weight: Mapping[int, float] | None = None,
    param_sharding: Any = None,
    mesh: jax.sharding.Mesh | None = None,
    resume_from: str | os.PathLike | None = None,
    fallback: bool = False,
    verbose: int | str = "auto",
    initial_epoch: int = 0,
    steps_per_dispatch: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    shuffle: bool = True,
    check_inputs: bool = True,
    validation: Any = None,
) -> History:
    """Trains ``model`` on ``data``; the trained weights land back in ``model``.

    On the CPU backend, ``fit`` (as ``evaluate``, ``predict`` and ``sweep``) tunes
    glibc's ``malloc`` while it runs, so that each step reuses the memory the previous
    one freed instead of faulting it in again; when it returns, large blocks are
    mapped again, given back when freed (``nnjax.train.host_memory.retaining``;
    ``NNJAX_RETAIN_HOST_MEMORY=0`` opts out, :func:`nnjax.train.retain_freed_memory`
    keeps it for the process).

    Args:
      model: a Flax NNX model; its ``nnx.Param`` s are trained, its other state
        (batch statistics, RNG streams) is carried through every step.
      data: ``(x, y)`` or ``(x, y, sample_weight)`` (``(N,)``, or ``(N, T)`` per position:
        :mod:`~nnjax.train.loss_weights`), ``x`` any pytree of ``(N, ...)`` arrays (a dict
        goes to the model as keywords, a tuple as positional inputs); memmaps, or any
        iterable of such batches. The last partial batch is padded and masked.
      loss: a name from :mod:`nnjax.losses` or ``loss(predictions, y) -> scalar``; for
        a model with several outputs (a dict or tuple of them, and labels alike), a dict
        (tuple, list) of those per output, summed per example (Keras'
        ``loss={"cls": "cross_entropy", "reg": "mse"}``; :func:`nnjax.losses.get`).
      loss_fn: instead of ``loss``, ``loss_fn(model, batch) -> loss | (loss, logs)``:
        ``model`` is the merged model in train mode, ``batch`` a
        :class:`~nnjax.train.data.Batch` ``(x, y, weight, mask)`` (``mask`` 0 on padded
        rows). It is differentiated, jitted, donated and sharded like the built-in path.
        On validation data (inference mode) it gives ``val_loss`` and ``val_<name>`` per
        log, averaged as in training (batch values weighted by real rows); a log named
        ``"loss"`` replaces the loss, ``val_loss`` too (``val_*`` replace training logs).
      optimizer: a name (``"adam"``, ``"sgd"``...), an Optax factory (``optax.adam``)
        or transformation (an ``optax.MultiSteps`` too). Names and factories run under
        ``optax.inject_hyperparams``.
      learning_rate: for a named optimizer or factory (default ``1e-3``); changing it
        never recompiles. An Optax transformation carries its own: passing both is an
        error.
      epochs: train until this epoch count (counting resumed ones).
      batch_size: examples per update (arrays; an iterable's batches keep their size).
      validation_data: ``(x, y[, sample_weight])`` or an iterable, evaluated after
        every epoch (``val_*`` logs).
      validation_split: hold out this last fraction of array data (Keras).
      metrics: metric specs (:func:`nnjax.metrics.resolve`, :func:`~nnjax.metrics.weighted`), or
        a dict of them per output (``{"cls": ["accuracy"]}``, logged as
        ``"cls_accuracy"``); ``None`` follows the loss (accuracy for classification
        losses, per output for a loss per output).
      callbacks: :class:`~nnjax.train.callbacks.Callback` instances.
      seed: fixes the data order of every epoch.
      precision: ``"bfloat16"``: bfloat16 compute on GPUs and TPUs; float32 parameters,
        optimizer state and loss. On a CPU with native bfloat16 (AMX; AVX512-BF16 but
        Intel's without AMX) the model stays float32 and its dense layers' matmuls round
        their operands to bfloat16; with AMX, so do its convolutions where that measured
        faster. On other CPUs the step is float32's, as fast, and a warning naming the CPU
        says so (:func:`~nnjax.train.objective.compute_dtype`). ``"float16"``: float16
        compute on any backend, float32 state and loss, the loss scaled dynamically
        (:func:`~nnjax.train.dynamic_loss_scale`); ``"float32"`` is ``None``.
      accumulate_steps: update with the mean of the gradients of this many
        consecutive batches (``optax.MultiSteps``): each batch's mean gradient counts
        once, a short last batch as much as a full one; a group may span epochs, and
        an incomplete group at the end is not applied (a run too short for one group
        is an error).
      remat: recompute the forward pass in the backward pass (less memory).
      steps_per_epoch: batches per epoch from an (endless) iterable.
      class_weight: ``{class: weight}`` scaling each example's loss by its class
        (times its ``sample_weight``, if given). A batch's loss is the weighted sum
        over its real rows divided by their number, not by the sum of weights (Keras);
        metrics are unweighted but :func:`nnjax.metrics.weighted` ones (Keras'
        ``weighted_metrics``); validation gets no class weights.
      param_sharding: how parameters and optimizer state are laid out: ``None``
        (replicated), ``"fsdp"`` (every parameter and its optimizer moments split
        over the ``'data'`` axis along its largest dimension that the axis size
        divides; other leaves replicated), or a sequence of ``(regex,
        PartitionSpec)`` rules over parameter paths like ``"layers/0/kernel"`` (first
        match wins; unmatched parameters replicated), for tensor parallelism over the
        named axes of ``mesh``. See :func:`nnjax.train.sharding.state_layout`.
      mesh: a device mesh with a ``'data'`` axis (batches are split over it) and any
        other named axes the ``param_sharding`` rules use (instead of ``devices``);
        ``Explicit`` axes (``jax.make_mesh``'s default) are used as ``Auto``.
      resume_from: a :class:`~nnjax.train.checkpoint.ModelCheckpoint` folder; if it
        holds a checkpoint, training continues after its epoch (a checkpoint that
        already holds ``epochs`` epochs trains nothing more: a rerun of a finished
        script). One step folder of it, or a file, is an error. The optimizer state
        comes back with the learning rate it had (a schedule's or
        ``ReduceLROnPlateau``'s) when ``learning_rate`` is the argument the
        checkpointed run got; a different ``learning_rate`` is applied instead (a
        checkpoint of an nnjax that did not record the argument keeps its own). A
        ``ModelCheckpoint`` into another folder than ``resume_from`` starts fresh
        there: a folder holding checkpoints is refused unless ``overwrite=True``.
      fallback: with ``resume_from``, if the newest checkpoint is damaged (a kill during
        its save, a bad disk), resume from the newest intact one and warn which.
      verbose: ``"auto"`` (a bar on a terminal or notebook, a line per epoch
        elsewhere), 0, 1 (bar), 2 (line).
      initial_epoch: the epoch to start from (when not resuming).
      steps_per_dispatch: updates per compiled dispatch (default 8, a rolled device
        loop; see :func:`~nnjax.train.compiled.steps_per_dispatch_for`; fewer where
        batches read on the host would pass 256 MiB a dispatch,
        :func:`~nnjax.train.feeder.default_steps`).
      devices: devices to shard each batch over (default: all local devices when they
        divide the batch size, else one; with several processes, every device of
        every process).
      shuffle: shuffle array data every epoch.
      check_inputs: reject integer ``x`` (raw images) and NaN inputs; integer inputs
        that the model declares in ``integer_inputs`` (:mod:`nnjax.train.model_call`)
        pass.
      validation: deprecated alias of ``validation_data``.

    Returns:
      The :class:`History` of per-epoch logs (including resumed epochs).

    If a callback or the user (``KeyboardInterrupt``) stops training with an exception
    (any exception, a callback's ``ValueError`` too), ``model`` holds the weights of the
    last completed dispatch; after a :class:`NonFiniteLossError`, a bad batch of the
    data or an error inside a compiled update (a host callback's, memory exhausted: that
    update had consumed the donated state; a note on the error says so) it keeps the
    weights it had before.

    Raises:
      ValueError, TypeError: bad data (naming the batch, key and shapes), labels out of
        range, wrong input shapes, unknown names, non-scalar ``loss_fn``;
        an ``initial_epoch`` that leaves nothing to train (Keras trains nothing);
        ``learning_rate`` with an Optax transformation; ``resume_from`` a file or one
        step folder, or a checkpoint of more than ``epochs`` epochs.
      NonFiniteLossError: the loss became NaN or infinite.

    Example:
      >>> import numpy as np
      >>> from flax import nnx
      >>> from nnjax.nn import MLP
      >>> model = MLP(2, (8,), 2, rngs=nnx.Rngs(0))
      >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
      >>> y = (x[:, 0] > 0).astype("int32")
      >>> history = fit(model, (x, y), loss="cross_entropy", epochs=2, verbose=0)
      >>> len(history.history["loss"])
      2
    """
    agreement.warn_if_not_joined()  # `nnjax launch` started it, but it joined no group
    validation_data = _validation_alias(validation, validation_data)
    epochs, batch_size, accumulate_steps, steps_per_epoch = setup.check_counts(
        epochs, batch_size, accumulate_steps, steps_per_epoch, initial_epoch, seed=seed
    )
    checks.check_flags(
        "fit", remat=remat, fallback=fallback, shuffle=shuffle, check_inputs=check_inputs
    )
    callbacks = as_callbacks(callbacks)
    lr = _learning_rate(optimizer, learning_rate)
    setup.check_param_sharding(param_sharding)
    if resume_from is not None:
        resume.check_run_folder(resume_from)
    objective = setup.objective(loss, loss_fn, metrics, precision, remat)
    tx = optimizers.for_fit(optimizer, accumulate_steps, dict(objective.options)["precision"])
    verbose = resolve_verbose(verbose)

    mesh_size = setup.data_axis_size(mesh, devices)
    source, val = setup.sources(
        data, validation_data, validation_split, batch_size=batch_size, mesh_size=mesh_size,
        steps_per_epoch=steps_per_epoch, class_weight=class_weight, check_inputs=check_inputs,
        integer_ok=model_call.integer_input_paths(model),
    )  # fmt: skip
    graphdef, params, rest = step.split_model(model)
    # several processes: the same run in each, or a ValueError naming what differs
    agreement.check_fit(
        source=source, val=val, params=params, optimizer=optimizer, learning_rate=lr,
        callbacks=callbacks, epochs=epochs, initial_epoch=initial_epoch, seed=seed,
        shuffle=shuffle, accumulate_steps=accumulate_steps, steps_per_dispatch=steps_per_dispatch,
        param_sharding=param_sharding, data_axis_size=mesh_size, resume_from=resume_from,
    )  # fmt: skip
    user_logs = setup.check_model(model, graphdef, params, rest, objective, source, val, tx)
    mesh = setup.make_mesh(source.batch_size, devices, mesh)
    if val is not None:  # the mesh may span more devices than ``mesh_size`` assumed
        val = divisible(val, int(mesh.shape[sharding.DATA_AXIS]))
    setup.warn_if_fsdp_unsharded(param_sharding, mesh, source.batch_size)
    if steps_per_dispatch is None:
        k = default_steps(compiled.steps_per_dispatch_for(model), source, mesh)
    else:  # 0 is no default: an error, as any count below 1
        k = checks.check_count("steps_per_dispatch", steps_per_dispatch, 1)

    state = TrainState(params, optimizers.init_state(tx, params, learning_rate=lr), rest)
    layout = sharding.state_layout(state, mesh, param_sharding)  # bad rules fail here
    state, history, initial_epoch, global_step = resume.start(
        resume_from, state, seed, layout, initial_epoch=initial_epoch, fallback=fallback,
        epochs=epochs, learning_rate=lr,
    )  # fmt: skip
    setup.check_passes(source, val, epochs - initial_epoch)
    if not history.epoch:  # a resumed run carries its partial group in the state
        setup.check_updates(accumulate_steps, source, epochs - initial_epoch)
    if history.epoch and initial_epoch < epochs and hasattr(source, "warn_if_resumed"):
        source.warn_if_resumed(initial_epoch)  # an IterableSource's stream restarts
    for callback in callbacks:  # what the checkpoints record, and whose run they continue
        if isinstance(callback, checkpoint.ModelCheckpoint):
            callback.bind_fit(resume_from=resume_from, learning_rate=lr)
    resumed = os.fspath(resume_from) if history.epoch and resume_from is not None else None
    run = Run(model, sharding.put_state(state, layout), mesh, history, seed, global_step,
              resumed_from=resumed)  # fmt: skip
    driver = CallbackDriver(callbacks, run)
    feeder = DeviceFeeder(source, mesh, k)
    plan = Plan(
        train_fn=_gathering(compiled.compiled_train(
            graphdef, objective.loss, tx, objective.metrics, k, mesh, feeder.gather,
            setup.step_options(objective, layout, param_sharding),
        ), mesh),
        feeder=feeder,
        validate=_validator(model, val, objective, mesh),
        metrics=step.resolve_metrics(objective.metrics),
        epochs=epochs,
        steps=source.steps,
        shuffle=shuffle,
        verbose=verbose,
    )  # fmt: skip
    with jax.set_mesh(mesh):  # its programs' context: their mesh (sharding.own_mesh)
        driver.train_begin(setup.log_names(objective, user_logs, val, state))
        train_into(model, run, plan, driver, initial_epoch, source)
    return history


def _validation_alias(validation: Any, validation_data: Any) -> Any:
    """``validation_data``, or ``validation`` (its deprecated alias) with a warning."""
    if validation is None:
        return validation_data
    if validation_data is not None:
        raise ValueError("pass `validation_data` only (`validation` is its deprecated alias)")
    warnings.warn(
        "fit(validation=...) is deprecated; pass validation_data=...",
        DeprecationWarning,
        stacklevel=user_stacklevel(),
    )
    return validation


def _validator(model: nnx.Module, val: Any, objective: setup.Objective, mesh: Mesh) -> Any:
    """``validate(state) -> logs`` over the validation source, or None without one."""
    if val is None:
        return None
    eval_graphdef = step.graphdef_for(model, training=False)
    options = dict(objective.options)
    feeder = block_feeder(val, mesh)  # array data on the device once
    return lambda s: evaluate_source(
        eval_graphdef, s.params, s.rest, val, loss=objective.loss, metrics=objective.metrics,
        mesh=mesh, precision=options["precision"], loss_fn=options["loss_fn"], feeder=feeder,
    )  # fmt: skip


__all__ = ["DEFAULT_STEPS_PER_DISPATCH", "NonFiniteLossError", "fit"]
