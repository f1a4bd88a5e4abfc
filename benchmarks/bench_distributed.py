"""Multi-process training throughput, and the per-device memory of FSDP against replicated.

Two parts:

* ``throughput``: ``fit`` of the Fashion-MNIST MLP 784-500-300-100-10 (and the CNN
  with ``--models mlp,cnn``) on random data of that shape, Adam, global batch 256,
  run as 1, 2 and 4 processes of this script (``nnjax.distributed.launch`` on
  127.0.0.1, one device per process: a CPU device per process here, one GPU per
  process on a GPU host). Each process reads only its rows of each global batch.
  The first epoch compiles; the median of the ``--epochs`` timed epochs is reported
  as examples/s, with the speed-up over one process and the scaling efficiency
  (speed-up / processes). On a 2-core CPU machine the processes share two cores, so
  more than 2 processes cannot scale: the figures record the overhead honestly.
* ``memory``: a wide MLP (784-4096-4096-10; 784-512-512-10 with ``--quick``) trained
  for one epoch in this process over all its devices (4 fake CPU devices on a CPU
  host), replicated and with ``param_sharding="fsdp"``: the bytes of parameters and
  Adam state on the busiest device (from the arrays' addressable shards) and, where
  the device reports them, its peak memory statistics.

Usage::

    python benchmarks/bench_distributed.py                 # 1, 2, 4 processes; memory
    python benchmarks/bench_distributed.py --quick         # tiny smoke run
    python benchmarks/bench_distributed.py --processes 1,2 --models mlp,cnn

Writes ``benchmarks/results/distributed_<platform>.json`` and prints a table. The same
script runs unchanged on a multi-GPU host (each process then takes one GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

if "--worker-out" not in sys.argv:  # the memory part: 4 devices on a CPU host
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import _harness as H

H.ensure_nnjax_importable()

import numpy as np  # noqa: E402

NAME = "distributed"
ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH = 256


def data(model: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images ``(n, 784)`` or ``(n, 28, 28, 1)`` and int32 labels."""
    rng = np.random.default_rng(seed)
    shape = (n, 784) if model == "mlp" else (n, 28, 28, 1)
    return rng.random(shape, dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)


def make_model(model: str, quick: bool):
    """The benchmark's model (smaller with ``quick``)."""
    from flax import nnx

    from nnjax.nn import CNN, MLP

    rngs = nnx.Rngs(0)
    if model == "mlp":
        return MLP(784, (32, 16) if quick else (500, 300, 100), 10, rngs=rngs)
    conv, dense = ((4,), (16,)) if quick else ((32, 64), (128,))
    return CNN((28, 28, 1), 10, conv_features=conv, dense=dense, rngs=rngs)


class EpochClock:
    """A callback that records the wall time of every epoch."""

    def __new__(cls):
        from nnjax import train

        class Clock(train.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        return Clock()


def worker(args: argparse.Namespace) -> None:
    """One process of a throughput group: joins, trains, process 0 writes its timings."""
    from nnjax import distributed

    platform = os.environ.get("JAX_PLATFORMS", "")
    index = int(os.environ.get(distributed.ENV_PROCESS_ID, "0"))
    local = None if platform == "cpu" else [index]  # one accelerator per process
    distributed.initialize(local_device_ids=local, timeout_s=120, heartbeat_timeout_s=30)
    from nnjax import train

    x, y = data(args.model, args.examples)
    clock = EpochClock()
    train.fit(make_model(args.model, args.quick), (x, y), loss="cross_entropy",
              batch_size=BATCH, epochs=1 + args.epochs, verbose=0, callbacks=[clock])  # fmt: skip
    if distributed.is_main_process():
        row = {"first_epoch_s": clock.times[0], "epoch_s": statistics.median(clock.times[1:])}
        pathlib.Path(args.worker_out).write_text(json.dumps(row))


def throughput(model: str, processes: int, args: argparse.Namespace) -> dict:
    """Runs ``processes`` workers of this script; their row (examples/s) or an error."""
    from nnjax import distributed

    out = pathlib.Path(tempfile.mkdtemp()) / "row.json"
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    if H.environment()["platform"] == "cpu":
        env |= {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    command = [sys.executable, __file__, "--worker-out", str(out), "--model", model,
               "--examples", str(args.examples), "--epochs", str(args.epochs)]  # fmt: skip
    command += ["--quick"] if args.quick else []
    status = distributed.launch(command, processes, timeout_s=args.timeout, env=env)
    if status != 0:
        return {"error": f"the {processes}-process group ended with status {status}"}
    row = json.loads(out.read_text())
    return {**row, "examples_per_s": args.examples / row["epoch_s"]}


def _device_bytes(tree) -> tuple[int, int]:
    import jax

    per_device: dict = {}
    total = 0
    for leaf in jax.tree.leaves(tree):
        total += leaf.nbytes
        for shard in leaf.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values()), total


def memory(param_sharding: str | None, quick: bool) -> dict:
    """Per-device bytes of parameters + Adam state of the wide MLP, one epoch trained."""
    import jax
    from flax import nnx

    from nnjax import train
    from nnjax.nn import MLP

    width = 512 if quick else 4096
    model = MLP(784, (width, width), 10, rngs=nnx.Rngs(0))
    x, y = data("mlp", 4 * len(jax.devices()) * 8)

    class Keep(train.Callback):
        def on_train_end(self, logs=None):
            Keep.state = self.loop.state

    train.fit(model, (x, y), loss="cross_entropy", batch_size=8 * len(jax.devices()),
              verbose=0, param_sharding=param_sharding, callbacks=[Keep()])  # fmt: skip
    device, total = _device_bytes((Keep.state.params, Keep.state.opt_state))
    stats = jax.devices()[0].memory_stats() or {}
    return {
        "param_sharding": param_sharding or "replicated",
        "width": width,
        "devices": len(jax.devices()),
        "state_bytes_total": total,
        "state_bytes_per_device": device,
        "peak_bytes_in_use_device0": stats.get("peak_bytes_in_use"),
    }


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs both parts, writes the JSON and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and data (smoke)")
    parser.add_argument("--processes", type=lambda s: [int(v) for v in s.split(",")])
    parser.add_argument("--models", type=lambda s: s.split(","), default=["mlp"])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (3)")
    parser.add_argument("--examples", type=int, default=None, help="examples per epoch")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per group")
    parser.add_argument("--parts", type=lambda s: s.split(","), default=["throughput", "memory"])
    parser.add_argument("--out", type=pathlib.Path, default=None, help="result JSON path")
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="mlp", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 1)
    args.examples = args.examples or (1024 if args.quick else 12_800)
    if args.worker_out:
        worker(args)
        return 0
    args.processes = args.processes or ([1, 2] if args.quick else [1, 2, 4])
    rows, errors = [], {}
    if "throughput" in args.parts:
        for model in args.models:
            for p in args.processes:
                row = {"part": "throughput", "model": model, "processes": p, "batch_size": BATCH,
                       "examples": args.examples, **throughput(model, p, args)}  # fmt: skip
                if "error" in row:
                    errors[f"{model}/{p}"] = row.pop("error")
                    continue
                rows.append(row)
                print(f"{model} {p} processes: {row['examples_per_s']:.0f} ex/s", flush=True)
        for r in rows:
            one = [b for b in rows if b["model"] == r["model"] and b["processes"] == 1]
            r["speedup"] = r["examples_per_s"] / one[0]["examples_per_s"] if one else None
            r["efficiency"] = r["speedup"] / r["processes"] if one else None
    if "memory" in args.parts:
        for mode in (None, "fsdp"):
            row = {"part": "memory", **memory(mode, args.quick)}
            rows.append(row)
            print(f"memory {row['param_sharding']}: {row['state_bytes_per_device']} B/device")
    config = {k: v for k, v in vars(args).items() if k not in ("out", "worker_out", "model")}
    config["cpu_cores_note"] = f"{os.cpu_count()} cores shared by every process of a group"
    out = args.out or H.default_out(NAME, args.quick)
    path = H.write_json(out, name=NAME, config=config, rows=rows, skipped={}, errors=errors)
    for r in rows:
        if r["part"] == "throughput":
            print(f"{r['model']:4s} {r['processes']} proc {r['epoch_s']:8.3f} s/epoch "
                  f"{r['examples_per_s']:9.0f} ex/s  x{r['speedup']:.2f} "
                  f"(efficiency {r['efficiency']:.2f})")  # fmt: skip
        else:
            per, total = r["state_bytes_per_device"], r["state_bytes_total"]
            print(f"memory {r['param_sharding']:10s} {per:12d} B per device of {total} B "
                  f"({r['devices']} devices)")  # fmt: skip
    for key, why in errors.items():
        print(f"error {key}: {why}")
    print(f"results written to {path}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
