"""The checkpoint scenarios of the 2-process test group (2 fake CPU devices each: 4 in all).

:func:`io_scenario` (folder ``io``): nnjax.save of a model whose first kernel is sharded
over both processes (FSDP style) and whose second is replicated over them; the same
save again without overwrite (FileExistsError everywhere); a save whose commit fails on
process 0, and one whose Orbax write fails on process 1 (OSError everywhere, at once,
the older folder kept); load_state of ``<folder>/one`` (written by one process) into a
model laid out FSDP over the processes.

:func:`fit_scenario` (folder ``ckpt``): fit(param_sharding="fsdp") resumed from
``<folder>/one_ckpt`` (one epoch, written by one process) to epoch 2 with
ModelCheckpoint(``<folder>/ckpt``), then a fresh fit resumed from ``<folder>/ckpt`` to
epoch 3; resume_state onto the FSDP layout.

Both count the calls of ``multihost_utils.process_allgather`` made while a checkpoint is
written (:class:`Gathers`: a gather on one host is what a collective save avoids).
"""

import errno
import importlib.util
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_fit_worker", os.path.join(HERE, "_fit_worker.py"))
W = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(W)


class Gathers:
    """Counts ``process_allgather`` calls while ``active`` (wraps JAX's function)."""

    def __init__(self):
        from jax.experimental import multihost_utils

        self.calls, self.active = 0, False
        original = multihost_utils.process_allgather

        def counting(*args, **kwargs):
            self.calls += self.active
            return original(*args, **kwargs)

        multihost_utils.process_allgather = counting

    def __enter__(self):
        self.active = True

    def __exit__(self, *exc):
        self.active = False


def small_model(seed):
    from flax import nnx

    from nnjax.nn import MLP

    return MLP(4, (8,), 2, rngs=nnx.Rngs(seed))


def fsdp_params(model):
    """Lays out ``model``'s parameters FSDP style over every device of every process."""
    import jax
    from flax import nnx

    from nnjax.distributed import arrays
    from nnjax.train import sharding
    from nnjax.train.state import TrainState

    mesh = sharding.make_mesh(jax.devices())
    state = nnx.state(model, nnx.Param)
    specs = sharding.state_layout(TrainState(state, (), {}), mesh, "fsdp").specs
    shardings = jax.tree.map(lambda s: jax.sharding.NamedSharding(mesh, s), specs.params)
    nnx.update(model, arrays.put(state, shardings))


def shards_match(array, expected):
    """Whether every shard this process holds equals ``expected`` at its index."""
    return all(
        np.array_equal(np.asarray(s.data), expected[s.index]) for s in array.addressable_shards
    )


def _expect_error(kind, call):
    try:
        call()
    except kind as err:
        return str(err)
    raise AssertionError(f"expected {kind.__name__}")


def io_scenario(out_dir, gathers):
    """The saves and loads of ``nnjax.io``; returns ``{name: value}``."""
    import jax

    import nnjax
    from nnjax.io import layout

    results = {}
    gathers.calls = 0
    model = small_model(0)
    fsdp_params(model)  # first kernel (4, 8): split over its 8 columns
    kernel = model.layers[0].kernel[...]
    assert not kernel.is_fully_addressable and not kernel.is_fully_replicated
    saved = os.path.join(out_dir, "saved")
    with gathers:
        nnjax.save(model, saved)
    results["gathers"] = gathers.calls
    results["loaded"] = np.asarray(nnjax.load(saved).layers[0].kernel[...])

    results["exists"] = _expect_error(FileExistsError, lambda: nnjax.save(model, saved))

    commit = layout._commit

    def failing(*args):
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    if jax.process_index() == 0:
        layout._commit = failing
    try:
        other = small_model(5)
        results["failed"] = _expect_error(OSError, lambda: nnjax.save(other, saved, overwrite=True))
    finally:
        layout._commit = commit
    results["after_failure"] = np.asarray(nnjax.load(saved).layers[0].kernel[...])
    results["orbax_failed"], results["orbax_failed_s"] = _orbax_fails_on_process_1(saved)
    results["after_orbax_failure"] = np.asarray(nnjax.load(saved).layers[0].kernel[...])

    target = small_model(7)
    fsdp_params(target)
    nnjax.load_state(target, os.path.join(out_dir, "one"))
    restored = target.layers[0].kernel[...]
    expected = np.load(os.path.join(out_dir, "one.npy"))
    results["one_sharding_kept"] = restored.sharding == kernel.sharding
    results["one_shards_match"] = shards_match(restored, expected)
    return results


def _orbax_fails_on_process_1(saved):
    """A save whose Orbax write of the shards fails on process 1: (error, seconds)."""
    import jax
    import orbax.checkpoint as ocp

    import nnjax

    handler = ocp.StandardCheckpointHandler
    original = handler.async_save

    async def failing(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error writing shards (simulated)")

    if jax.process_index() == 1:
        handler.async_save = failing
    start = time.monotonic()
    try:
        other = small_model(6)
        error = _expect_error(OSError, lambda: nnjax.save(other, saved, overwrite=True))
    finally:
        handler.async_save = original
    return error, time.monotonic() - start


def fit_scenario(out_dir, gathers):
    """resume_state and fit(resume_from=...) onto the FSDP layout; returns ``{name: value}``."""
    import jax

    from nnjax import train
    from nnjax.distributed import arrays
    from nnjax.train import optimizers, resume, sharding, step
    from nnjax.train.checkpoint import ModelCheckpoint
    from nnjax.train.state import TrainState

    class Counted(ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            with gathers:
                super().on_epoch_end(epoch, logs)

    gathers.calls = 0
    (x, y), _ = W.dataset()
    one, ckpt = os.path.join(out_dir, "one_ckpt"), os.path.join(out_dir, "ckpt")
    settings = {**W.FIT, "param_sharding": "fsdp", "verbose": 0}

    # resume_state onto the FSDP layout: each process reads only its shards
    model = W.make_model()
    _, params, rest = step.split_model(model)
    tx = optimizers.accumulate(optimizers.get_optimizer("adam"), 1)
    state = TrainState(params, optimizers.init_state(tx, params, learning_rate=0.02), rest)
    layout = sharding.state_layout(state, sharding.make_mesh(jax.devices()), "fsdp")
    restored, *_ = resume.resume_state(one, state, W.FIT["seed"], shardings=layout.shardings())
    shardings = layout.shardings()
    wanted = jax.tree.leaves((shardings.params, shardings.opt_state))
    got = jax.tree.leaves((restored.params, restored.opt_state))
    kernel = restored.params["layers"][0]["kernel"]
    with gathers:
        sharding.put_state(restored, layout)  # what fit does next: no gather either
    results = {
        "sharded_restore": not kernel.is_fully_addressable and not kernel.is_fully_replicated,
        "restore_layout": len(got) == len(wanted)
        and all(a.sharding == s for a, s in zip(got, wanted)),
        "restored_kernel": np.asarray(arrays.to_host(kernel)),
    }

    model = W.make_model()
    train.fit(model, (x, y), callbacks=[Counted(ckpt)], resume_from=one, **settings)
    model = W.make_model()
    hist = train.fit(
        model, (x, y), callbacks=[Counted(ckpt)], resume_from=ckpt, **{**settings, "epochs": 3}
    )
    results["gathers"] = gathers.calls
    results["epochs"] = np.asarray(hist.epoch)
    results.update({f"resumed.{i}": a for i, a in enumerate(W.leaves(model))})
    return results
