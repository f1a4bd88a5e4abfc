"""A process of a 2-process test group: joins with initialize() and all-reduces.

Usage: python _worker.py OUT_DIR MODE, MODE one of
  sum    each process contributes (index + 1) * ones on its 2 local devices; every process
         writes the global sum it sees to OUT_DIR/<index>.json;
  crash  process 1 dies at once with status 3 (os._exit, as a kill would: no clean
         shutdown); process 0 blocks in a collective until the launcher stops it.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from nnjax import distributed


def main(out_dir: str, mode: str) -> None:
    distributed.initialize(timeout_s=60, heartbeat_timeout_s=10)
    index = distributed.process_index()
    if mode == "crash" and index == 1:
        os._exit(3)
    local = np.full((jax.local_device_count(),), index + 1.0, np.float32)
    gathered = multihost_utils.process_allgather(jnp.asarray(local))
    result = {
        "process_count": distributed.process_count(),
        "index": index,
        "main": distributed.is_main_process(),
        "devices": jax.device_count(),
        "sum": float(np.sum(gathered)),
    }
    with open(os.path.join(out_dir, f"{index}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
