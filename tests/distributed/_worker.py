"""One process of the 2-process test group (2 fake CPU devices per process: 4 in all).

Usage: python _worker.py OUT_DIR [crash]

Without a mode, one launch runs every scenario in turn (one JAX start-up per process,
and the compiled steps shared between scenarios): ``allreduce`` (below), ``fit``
(``_fit_worker.py``), ``io`` and ``ckpt`` (``_ckpt_worker.py``), ``sweep``
(``_sweep_worker.py``). Scenario NAME reads its inputs from OUT_DIR/NAME (the test
writes them first) and writes there: process i's results to ``NAME/<i>.npz``, its
stdout to ``NAME/<i>.log``. Last, process i writes ``OUT_DIR/<i>.json``: the seconds of
each scenario and the keys left in the key-value store of JAX's coordination service.

crash: process 1 dies at once with status 3 (``os._exit``, as a kill would: no clean
shutdown); process 0 blocks in a collective until JAX's heartbeat check ends it (started
without the launcher, so that nothing else stops it; heartbeat timeout
:data:`CRASH_HEARTBEAT_S`).
"""

import json
import os
import sys
import time

START = time.monotonic()
CRASH_HEARTBEAT_S = 5


def join_group(heartbeat_timeout_s=10):
    """Joins the launched group (2 CPU devices per process, strict rank promotion)."""
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_numpy_rank_promotion", "raise")
    from nnjax import distributed

    distributed.initialize(timeout_s=60, heartbeat_timeout_s=heartbeat_timeout_s)
    return distributed.process_index()


def allreduce(out_dir):
    """Process ``i`` gives ``i + 1`` on each of its devices; the gathered sum and the group."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import multihost_utils

    from nnjax import distributed

    index = distributed.process_index()
    local = np.full((jax.local_device_count(),), index + 1.0, np.float32)
    gathered = multihost_utils.process_allgather(jnp.asarray(local))
    return {
        "process_count": distributed.process_count(),
        "index": index,
        "main": distributed.is_main_process(),
        "devices": jax.device_count(),
        "sum": float(np.sum(gathered)),
    }


def live_keys():
    """The keys that nnjax's collective writes left in the coordination service's store."""
    from jax._src import distributed as jax_distributed

    from nnjax.io import _collective

    client = jax_distributed.global_state.client
    return sorted(key for key, _ in client.key_value_dir_get(_collective.ROOT))


def scenarios():
    """``[(name, run)]``: each ``run(folder)`` returns ``{name: array}``, in order."""
    import _ckpt_worker
    import _fit_worker
    import _sweep_worker

    gathers = _ckpt_worker.Gathers()
    return [
        ("allreduce", allreduce),
        ("fit", _fit_worker.scenario),
        ("io", lambda folder: _ckpt_worker.io_scenario(folder, gathers)),
        ("ckpt", lambda folder: _ckpt_worker.fit_scenario(folder, gathers)),
        ("sweep", _sweep_worker.scenario),
    ]


def run_all(out_dir, index):
    import numpy as np

    seconds = {"start": time.monotonic() - START}
    stdout = sys.stdout
    for name, run in scenarios():
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        start = time.monotonic()
        with open(os.path.join(folder, f"{index}.log"), "w", buffering=1) as log:
            sys.stdout = log
            try:
                results = run(folder)
            finally:
                sys.stdout = stdout
        np.savez(os.path.join(folder, f"{index}.npz"), **results)
        seconds[name] = time.monotonic() - start
        print(f"process {index}: {name} {seconds[name]:.1f} s", file=sys.stderr, flush=True)
    with open(os.path.join(out_dir, f"{index}.json"), "w") as f:
        json.dump({"seconds": seconds, "keys": live_keys()}, f)


def crash():
    import jax.numpy as jnp
    from jax.experimental import multihost_utils

    index = join_group(heartbeat_timeout_s=CRASH_HEARTBEAT_S)
    if index == 1:
        os._exit(3)
    multihost_utils.process_allgather(jnp.ones(2))  # never completes: process 1 is gone


def main(out_dir, mode=None):
    if mode == "crash":
        crash()
        return
    run_all(out_dir, join_group())


if __name__ == "__main__":
    main(*sys.argv[1:])
