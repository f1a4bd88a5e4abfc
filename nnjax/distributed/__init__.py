"""Beyond one process: joining a multi-process run and starting one locally.

Built on JAX's multi-controller runtime (:func:`jax.distributed.initialize`, XLA
collectives): :func:`initialize` joins the group (explicit arguments, the variables
that ``nnjax launch`` sets, or JAX's cluster detection), and :func:`launch` starts N
local processes of one command for development. :mod:`~nnjax.distributed.arrays`
places and gathers global arrays over every process (each process only its own
rows or shards); :mod:`~nnjax.distributed.partition` turns FSDP or ``(regex,
PartitionSpec)`` rules into partition specs for a pytree of parameters. This package
knows no models and no training.

Example:
  >>> from nnjax import distributed
  >>> distributed.process_count(), distributed.is_main_process()
  (1, True)
"""

from nnjax.distributed import arrays, partition
from nnjax.distributed.launcher import free_port, launch, reserved_port
from nnjax.distributed.partition import fsdp_spec, rule_specs
from nnjax.distributed.process import (
    ENV_ADDRESS,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    initialize,
    initialize_if_launched,
    is_main_process,
    process_count,
    process_index,
)

__all__ = [
    "ENV_ADDRESS",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "arrays",
    "free_port",
    "fsdp_spec",
    "initialize",
    "initialize_if_launched",
    "is_main_process",
    "launch",
    "partition",
    "process_count",
    "process_index",
    "reserved_port",
    "rule_specs",
]
