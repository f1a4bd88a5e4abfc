"""Sweeps and ensembles: ``fit`` over ``M`` stacked members, one vmapped program per structure.

Each *member* has a seed and a value for every swept hyperparameter (:func:`grid`,
:func:`random_search`). Optimizer hyperparameters (any numeric argument of the Optax
factory: learning rate, weight decay, momentum) live in each member's
``optax.inject_hyperparams`` state; ``model_fn`` hyperparameters (hidden sizes, dropout
rate, activation) change the graph, so members are grouped by them: members with equal
structure share one compiled ``jax.vmap`` of ``fit``'s own step, and the groups run one
after another. Every group runs through ``fit``'s epoch loop
(:func:`nnjax.train.engine.run_epochs`) with its callbacks, validation and metrics.

Data-order rule: a member with seed ``s`` sees, in epoch ``e``, exactly the padded and
masked batches ``epoch_index(s, e, N, batch_size)`` (:mod:`nnjax.train.data`), the
ones ``fit(model, ..., seed=s)`` uses, through the same step and device loop. So member
``i`` ends where ``fit(model_fn(nnx.Rngs(seed_i), **structure_i), ..., seed=seed_i)``
with its hyperparameters ends, early stopping included, up to float32 rounding:
``vmap`` turns each member's matrix products into one batched product, which XLA may
tile and sum in another order than the unbatched one (and the device split reduces in
another order too), so parameters can differ in the last bits, growing with the
learning rate (measured: within ``5e-5`` after 5 epochs of Adam at 0.3, ``5e-6`` at
0.03; ``tests/train/test_sweep_exactness.py``). Where ``fit`` raises
:class:`~nnjax.train.engine.NonFiniteLossError`, the member *diverged*: it keeps the
state it had before the failing dispatch and stops, the others go on, and
:attr:`SweepResult.diverged_epoch` says which and when.

Devices and processes: like ``fit``, a sweep splits every batch over the ``'data'``
axis of a mesh (all local devices that divide ``batch_size``, or ``devices=``), the
members' state replicated. After :func:`nnjax.distributed.initialize` the mesh spans
every device of every process: each process reads only its rows of every member's
batches (:mod:`nnjax.train.sweep_feeder`), the logs are reduced over the global
batches, every process returns the same :class:`SweepResult` (call ``sweep`` and the
result's methods in every process), only process 0 prints and writes the CSV, and
checkpoints are written together, through :mod:`nnjax.io` as ``ModelCheckpoint``'s.

Example:
  >>> import numpy as np, optax
  >>> from flax import nnx
  >>> from nnjax.nn import MLP
  >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
  >>> y = (x[:, 0] > 0).astype("int32")
  >>> result = sweep(lambda rngs: MLP(2, (8,), 2, rngs=rngs), (x, y),
  ...                loss="cross_entropy", optimizer=optax.sgd,
  ...                members=grid(seeds=[0, 1], learning_rate=[0.1, 0.3]), epochs=2)
  >>> result.num_members, result.history["loss"].shape
  (4, (4, 2))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

from nnjax import losses
from nnjax._deprecation import renamed_args
from nnjax.train import compiled, host_memory, setup, sharding, step, sweep_callbacks
from nnjax.train import validation as checks
from nnjax.train._sweep_groups import assemble
from nnjax.train.callbacks import Callback
from nnjax.train.driver import CallbackDriver, Run
from nnjax.train.engine import Plan, run_epochs
from nnjax.train.evaluate import divisible
from nnjax.train.interrupts import holding_interrupts
from nnjax.train.optimizers import check_learning_rate
from nnjax.train.sweep_args import (
    OptimizerFactory,
    build_member,
    check_args,
    integer_paths,
    optimizer_factory,
    split_callbacks,
    unpack_members,
)
from nnjax.train.sweep_callbacks import (
    EndWhenInactive,
    MemberStopping,
    SweepCheckpoint,
    SweepProgress,
    check_fresh,
    group_folder,
    resume,
)
from nnjax.train.sweep_feeder import SweepFeeder, default_sweep_steps
from nnjax.train.sweep_preflight import check_groups
from nnjax.train.sweep_result import (
    MemberGroup,
    SweepResult,
    ensemble_predict,
    member_predictions,
)
from nnjax.train.sweep_space import (
    Choice,
    Integer,
    LogUniform,
    Uniform,
    check_numeric,
    grid,
    groups,
    keywords,
    random_search,
    route,
    zip_members,
)
from nnjax.train.sweep_step import (
    SweepHistory,
    SweepState,
    auto_eval_per_step,
    auto_per_step,
    compiled_sweep_train,
    init_opt_states,
    make_sweep_logs,
    make_validate,
    stack,
)

DEFAULT_STEPS_PER_DISPATCH = compiled.DEFAULT_STEPS_PER_DISPATCH
"""Updates fused into one dispatch (as in ``fit``)."""


@renamed_args(train="data")
@sharding.own_mesh
@host_memory.retaining
@holding_interrupts
def sweep(
    model_fn: Callable[..., nnx.Module],
    data: Any,
    *,
    loss: losses.LossSpec | None = None,
    loss_fn: Callable | None = None,
    optimizer: str | OptimizerFactory = "adam",
    learning_rate: float = 1e-3,
    members: Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0,),
    hyperparams: Mapping[str, Any] | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Any = None,
    validation_split: float = 0.0,
    metrics: Any = None,
    callbacks: Sequence[Callback] | None = (),
    precision: str | None = None,
    accumulate_steps: int = 1,
    remat: bool = False,
    class_weight: Mapping[int, float] | None = None,
    steps_per_epoch: int | None = None,
    steps_per_dispatch: int | None = None,
    members_per_program: int | None = None,
    members_per_step: int | str | None = "auto",
    shuffle: bool = True,
    resume_from: str | os.PathLike | None = None,
    verbose: int = 0,
    check_inputs: bool = True,
    devices: Sequence[jax.Device] | None = None,
) -> SweepResult:
    """Trains ``M`` members (seeds x hyperparameters), ``fit`` over stacked members.

    Args:
      model_fn: ``model_fn(rngs, **structure)`` builds one member from ``nnx.Rngs(seed)``
        and the swept hyperparameters it takes (e.g. ``width``, ``dropout``).
      data: as ``fit``: ``(x, y[, sample_weight])`` arrays, or an iterable of batches
        (then every member sees the iterable's batches).
      loss: a loss name or ``loss(predictions, y)`` (as ``fit``).
      loss_fn: instead of ``loss``, ``loss_fn(model, batch)`` (as ``fit``).
      metrics: metric specs; ``None`` follows the loss (as ``fit``).
      precision: as ``fit``'s (``"bfloat16"``; ``"float16"`` with dynamic loss scaling).
      accumulate_steps: update with the mean gradient of this many batches (as ``fit``).
      remat: recompute the forward pass in the backward pass.
      class_weight: ``{class: weight}`` (as ``fit``).
      steps_per_epoch: batches per epoch from an endless iterable.
      batch_size: examples per update; the last batch is padded and masked.
      epochs: the epoch count.
      validation_data: evaluated for every member after every epoch (``val_*`` logs).
      validation_split: hold out this last fraction of array data.
      shuffle: shuffle array data every epoch.
      check_inputs: reject integer and NaN inputs (as ``fit``; integer inputs that the
        members declare in ``integer_inputs`` pass).
      optimizer: an Optax optimizer factory (``optax.adam``, or a
        ``functools.partial`` of one) or a name; run under ``optax.inject_hyperparams``.
        One for all members (its numeric arguments vary per member); compare
        optimizers with one sweep each.
      learning_rate: used when the members do not set ``learning_rate``.
      members: ``{"seeds": [...], "hyperparams": {name: [...]}}`` from :func:`grid` or
        :func:`random_search` (or pass ``seeds``/``hyperparams`` yourself: zipped, a
        list of length 1 broadcast). Each name goes to the optimizer factory if it
        takes it, else to ``model_fn``.
      seeds: each member's seed: its initialisation, dropout streams and data order.
      hyperparams: name -> per-member values.
      callbacks: a list (or None). :class:`~nnjax.train.callbacks.EarlyStopping` acts
        per member (a stopped member is masked out inside the compiled step; the sweep
        ends when all have stopped); :class:`~nnjax.train.checkpoint.ModelCheckpoint` saves the
        stacked state of each group under ``directory/group_<g>`` every epoch
        (``save_best_only`` is refused). ``ReduceLROnPlateau`` and
        ``LearningRateScheduler`` set each member's rate as ``fit`` of it alone would.
        Other callbacks see logs of ``(M,)`` arrays, once per group; what they write
        into the logs (``(M,)`` arrays, or one number for every member) is recorded in
        the history, as ``fit`` records it.
      steps_per_dispatch: updates per compiled dispatch (default as ``fit``).
      members_per_program: at most this many members share one compiled program (more
        run as further groups, one after another); default: all of a structure.
      members_per_step: inside a program, this many members are vmapped together and
        such blocks run one after another in a device loop (``lax.map``); ``1`` computes
        one member at a time with unbatched matrix products; ``None`` all at once.
        ``"auto"``: all at once, except on CPU for members of more than
        :data:`~nnjax.train.members.CPU_VMAP_MAX_PARAMS` parameters, or
        :data:`~nnjax.train.members.CPU_VMAP_MAX_PARAMS_CONV_RNN` with
        convolutional or recurrent layers (one at a time: measured faster there).
      resume_from: a ``ModelCheckpoint`` folder of an earlier run of this sweep: every
        group continues after its newest checkpoint (a finished group is not rerun).
      verbose: 0 silent; 1 or 2 one line per epoch and group (process 0 only).
      devices: devices to split each batch over, as ``fit``'s (default: all local
        devices when they divide ``batch_size``, else one; after
        :func:`nnjax.distributed.initialize`, every device of every process, each
        process reading only its rows of every member's batches).

    Returns:
      A :class:`~nnjax.train.sweep_result.SweepResult`. A member whose loss became NaN
      or infinite does not stop the others: it is frozen with the state it had before
      that dispatch, its history is NaN from that epoch on, ``diverged_epoch`` names
      the epoch and ``best()`` never picks it. A group ends early once none of its
      members is active (all stopped or diverged).

    Raises:
      ValueError, TypeError: before anything compiles: bad data, a ``model_fn`` that is
        not a function building an ``nnx.Module``, ``members`` not as ``grid`` builds
        them, member lists of different lengths, a seed that is not an int ``>= 0``, a
        hyperparameter neither the optimizer factory nor ``model_fn`` takes, a
        non-numeric optimizer hyperparameter, a learning rate that is not ``> 0``, an
        unknown optimizer name or a class, ``callbacks`` not a list of callbacks, members of one
        structure with different architectures (:mod:`nnjax.train.sweep_args`).

    Example:
      >>> import numpy as np
      >>> from nnjax.nn import MLP
      >>> x = np.ones((16, 2), np.float32); y = np.zeros((16, 1), np.float32)
      >>> r = sweep(lambda rngs, width: MLP(2, (width,), 1, rngs=rngs), (x, y), loss="mse",
      ...           members=grid(seeds=[0, 1], width=[4, 8]), batch_size=8)
      >>> len(r.groups), r.member(3).layers[0].kernel.shape
      (2, (2, 8))
    """
    flags = {"remat": remat, "shuffle": shuffle, "check_inputs": check_inputs}
    epochs, batch_size = check_args(model_fn, epochs, batch_size, **flags)
    if members is not None:
        if tuple(seeds) != (0,) or hyperparams:
            raise ValueError("sweep: pass `members` or `seeds`/`hyperparams`, not both")
        seeds, hyperparams = unpack_members(members)
    objective = setup.objective(loss, loss_fn, metrics, precision, remat, caller="sweep")
    factory = optimizer_factory(optimizer, accumulate_steps, dict(objective.options)["precision"])
    seed_list, hp = zip_members(seeds, hyperparams or {})
    opt_names, model_names = route(list(hp), factory, model_fn)
    if "learning_rate" not in hp and "learning_rate" in (keywords(factory) or ()):
        hp["learning_rate"] = [check_learning_rate(learning_rate)] * len(seed_list)
        opt_names = tuple(sorted((*opt_names, "learning_rate")))
    check_numeric(hp, opt_names)
    stop_spec, ckpt_spec, others = split_callbacks(callbacks)
    source, val = setup.sources(
        data, validation_data, validation_split, batch_size=batch_size,
        mesh_size=setup.data_axis_size(None, devices), steps_per_epoch=steps_per_epoch,
        class_weight=class_weight, check_inputs=check_inputs,
        integer_ok=integer_paths(model_fn, seed_list[0], {n: hp[n][0] for n in model_names}),
    )  # fmt: skip
    mesh = setup.make_mesh(source.batch_size, devices, None)
    val = divisible(val, mesh.size)
    if members_per_program is not None:
        members_per_program = checks.check_count("members_per_program", members_per_program, 1)
    if members_per_step not in (None, "auto"):
        members_per_step = checks.check_count("members_per_step", members_per_step, 1)
    member_groups = groups(hp, model_names, len(seed_list), members_per_program)
    setup.check_passes(source, val, epochs * len(member_groups))  # each group: every epoch
    context = dict(
        model_fn=model_fn, seeds=seed_list, hp=hp, opt_names=opt_names, factory=factory,
        objective=objective, source=source, val=val, epochs=epochs, shuffle=shuffle,
        steps_per_dispatch=steps_per_dispatch, stop_spec=stop_spec, ckpt_spec=ckpt_spec,
        others=others, resume_from=resume_from, verbose=verbose, num_groups=len(member_groups),
        per_step=members_per_step, mesh=mesh,
    )  # fmt: skip
    check_groups(member_groups, context)  # every group's model, before the first trains
    with jax.set_mesh(mesh):  # its programs' context: their mesh (sharding.own_mesh)
        done = [_run_group(g, idx, s, **context) for g, (idx, s) in enumerate(member_groups)]
    return assemble(done, seed_list, hp, [*opt_names, *model_names], stop_spec)


def _build(model_fn, seeds: list[int], structure: dict[str, Any]):
    built = {s: build_member(model_fn, s, structure) for s in dict.fromkeys(seeds)}
    splits = {s: step.split_model(model) for s, model in built.items()}
    if len({gd for gd, _, _ in splits.values()}) != 1:
        raise ValueError(
            "sweep: `model_fn` built members with different architectures for seeds "
            f"{sorted(built)} (arguments {structure}); members of one structure must match"
        )
    first = built[seeds[0]]
    params = stack([splits[s][1] for s in seeds])
    rest = stack([splits[s][2] for s in seeds])
    return first, splits[seeds[0]], params, rest


def _initial_state(idx: np.ndarray, seeds: list[int], structure: dict[str, Any], c: dict):
    """The group's first member model, graph, stacked fresh state and ``loss_fn`` log names."""
    model, (graphdef, params0, rest0), params, rest = _build(c["model_fn"], seeds, structure)
    hp, names = c["hp"], c["opt_names"]
    values = {n: [hp[n][i] for i in idx] for n in names}
    tx0 = optax.inject_hyperparams(c["factory"])(**{n: v[0] for n, v in values.items()})
    user_logs = setup.check_model(
        model, graphdef, params0, rest0, c["objective"], c["source"], c["val"], tx0
    )
    opt_state = init_opt_states(c["factory"], params, values)
    state = SweepState(params, opt_state, rest, np.ones(len(idx), np.float32))
    return model, graphdef, state, user_logs


def _group_callbacks(g: int, c: dict, stopping, expect: dict, *, resumed: bool) -> list:
    """The user's other callbacks, per-member stopping, the end, the checkpoint, progress."""
    cbs = [*c["others"], *([stopping] if stopping else []), EndWhenInactive()]
    if c["ckpt_spec"] is not None:
        folder = group_folder(c["ckpt_spec"].directory, g)
        check_fresh(folder, c["ckpt_spec"].overwrite, resumed=resumed)
        cbs.append(SweepCheckpoint(
            folder, max_to_keep=c["ckpt_spec"].max_to_keep, stopping=stopping, meta=expect
        ))  # fmt: skip
    if c["verbose"] and jax.process_index() == 0:
        cbs.append(SweepProgress(g, c["num_groups"], c["epochs"]))
    return cbs


def _group_plan(model: nnx.Module, graphdef: nnx.GraphDef, state: SweepState, c: dict) -> Plan:
    """The engine's plan: the vmapped dispatch, the per-member feeder, validation and logs."""
    objective, seeds = c["objective"], c["group_seeds"]
    per_step, mesh = c["per_step"], c["mesh"]
    eval_per_step = per_step
    if per_step == "auto":
        platform = jax.devices()[0].platform
        per_step = auto_per_step(state.params, platform, graphdef)
        eval_per_step = auto_eval_per_step(platform, graphdef)
    if len(seeds) == 1:  # one member runs unbatched whatever per_step says (over_members)
        per_step = 1
    k = c["steps_per_dispatch"]
    if k is None:
        k = default_sweep_steps(
            compiled.steps_per_dispatch_for(model), c["source"], mesh, len(seeds)
        )  # fmt: skip
    k = checks.check_count("steps_per_dispatch", k, 1)
    feeder = SweepFeeder(c["source"], seeds, k, mesh)
    validate = None
    if c["val"] is not None:
        eval_graphdef = step.graphdef_for(model, training=False)
        args = (objective.loss, objective.metrics, objective.options)
        validate = make_validate(eval_graphdef, c["val"], *args, mesh, eval_per_step)
    resolved = step.resolve_metrics(objective.metrics)
    return Plan(
        train_fn=compiled_sweep_train(
            graphdef, objective.loss, c["factory"], c["opt_names"], objective.metrics,
            feeder.k, feeder.mode, objective.options, per_step, mesh,
        ),
        feeder=feeder, validate=None, metrics=resolved, epochs=c["epochs"],
        steps=c["source"].steps, shuffle=c["shuffle"], verbose=0,
        logs_fn=make_sweep_logs(resolved, validate),
    )  # fmt: skip


def _run_group(g: int, idx: np.ndarray, structure: dict[str, Any], **c: Any) -> dict[str, Any]:
    """Trains one group through the engine's epoch loop (resuming from its checkpoint)."""
    seeds = [c["seeds"][i] for i in idx]
    model, graphdef, state, user_logs = _initial_state(idx, seeds, structure, c)
    stopping = None if c["stop_spec"] is None else MemberStopping(c["stop_spec"], len(idx))
    expect = sweep_callbacks.group_meta(g, idx, seeds, c["hp"])
    history, initial, global_step, finished = SweepHistory(), 0, 0, False
    if c["resume_from"] is not None:
        got = resume(group_folder(c["resume_from"], g), state, stopping, expect)
        if got is not None:
            state, history, initial, global_step, finished = got
    state = SweepState(*sharding.put_replicated(tuple(state), c["mesh"]))
    if stopping is not None and stopping.best is not None:  # resumed: its kept best weights
        stopping.best = sharding.put_replicated(stopping.best, c["mesh"])
    run = Run(model, state, c["mesh"], history, seeds[0], global_step)  # type: ignore[arg-type]
    cbs = _group_callbacks(g, c, stopping, expect, resumed=len(history) > 0)
    driver = CallbackDriver(cbs, run)
    driver.train_begin(setup.log_names(c["objective"], user_logs, c["val"], state))
    plan = _group_plan(model, graphdef, state, {**c, "group_seeds": seeds})
    run_epochs(run, plan, driver, c["epochs"] if finished else initial)
    return {"idx": idx, "structure": structure, "model": model, "run": run, "stopping": stopping}


__all__ = [
    "DEFAULT_STEPS_PER_DISPATCH",
    "Choice",
    "Integer",
    "LogUniform",
    "MemberGroup",
    "SweepResult",
    "Uniform",
    "ensemble_predict",
    "grid",
    "member_predictions",
    "random_search",
    "sweep",
]
