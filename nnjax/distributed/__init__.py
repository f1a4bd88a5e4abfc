"""Beyond one process: joining a multi-process run and starting one locally.

Built on JAX's multi-controller runtime (:func:`jax.distributed.initialize`, XLA
collectives): :func:`initialize` joins the group (explicit arguments, the variables
that ``nnjax launch`` sets, or JAX's cluster detection), and :func:`launch` starts N
local processes of one command for development. This package knows no models and no
training.

Example:
  >>> from nnjax import distributed
  >>> distributed.process_count(), distributed.is_main_process()
  (1, True)
"""

from nnjax.distributed.launcher import free_port, launch
from nnjax.distributed.process import (
    ENV_ADDRESS,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    initialize,
    is_main_process,
    process_count,
    process_index,
)

__all__ = [
    "ENV_ADDRESS",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "free_port",
    "initialize",
    "is_main_process",
    "launch",
    "process_count",
    "process_index",
]
