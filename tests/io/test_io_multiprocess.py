"""Two JAX processes: a cross-process sharded model is gathered, process 0 writes, both load."""

import socket
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
    import numpy as np
    from flax import nnx
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import nnjax
    from nnjax import nn

    model = nn.MLP(4, (8,), 2, rngs=nnx.Rngs(0))
    kernel = np.asarray(model.layers[0].kernel[...])
    mesh = Mesh(np.array(jax.devices()), ("data",))
    sharded = jax.make_array_from_callback(
        kernel.shape, NamedSharding(mesh, P(None, "data")), lambda idx: kernel[idx]
    )
    assert not sharded.is_fully_addressable
    model.layers[0].kernel[...] = sharded
    nnjax.save(model, sys.argv[3])
    multihost_utils.sync_global_devices("saved")
    loaded = nnjax.load(sys.argv[3])
    np.testing.assert_array_equal(np.asarray(loaded.layers[0].kernel[...]), kernel)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two JAX processes start and connect: ~40 s on 2 cores
def test_save_and_load_with_two_processes(tmp_path):
    pytest.importorskip("jax.experimental.multihost_utils")
    address = f"localhost:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, address, str(i), str(tmp_path / "m")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m"]  # one folder, no leftovers
