"""Times training and inference of one MLP in nnjax and in its peers, in one run.

The model is the same everywhere: ``784-500-300-100-10`` (configurable with
``--sizes``), ReLU, float32, softmax cross-entropy on random data, trained with Adam
(or SGD). For each batch size and peer it times

* ``train``: one optimizer step on one (device-resident) batch, and
* ``predict``: one forward pass,

recording the first call (trace + compile + run) apart from the steady-state median.

Peers: ``nnjax`` (``nnjax.train`` pure step under ``jax.jit`` with donation),
``nnjax_scan`` (the same, K steps fused per dispatch with ``lax.scan``; reported per
step), ``flax_nnx`` (idiomatic ``nnx.jit`` + ``nnx.Optimizer``), ``flax_nnx_partial``
(``nnx.jit_partial``, Flax's low-overhead path), ``equinox`` (``eqx.filter_jit``),
``keras`` (Keras 3, JAX backend, ``train_on_batch``/``predict_on_batch``), ``torch``
(eager; ``torch_compile`` on request), ``nnjax_bf16`` (``nnjax`` with the model built
with ``dtype=jnp.bfloat16``: bfloat16 compute, float32 parameters), ``nnjax_precision``
(``nnjax``'s float32 model stepped as ``fit(precision="bfloat16")`` steps it),
``nnjax_no_donate`` on request (``nnjax`` without buffer donation), and on request
``nnjax_scan_bf16`` and ``nnjax_scan_precision`` (the two bfloat16 peers K steps per
dispatch, as ``fit`` runs dense models; their ``bfloat16:`` lines compare them with
``nnjax_scan``). A peer that is not
installed is skipped with a note.

After the table, a ``bfloat16:`` line per bfloat16 peer says which case of the hardware
applies (native bfloat16 matmuls: GPU, TPU, AMX, AVX512-BF16; or emulated) with its
goal (at least 2x faster than float32; or never slower), and the measured
``peer / nnjax`` train time. ``fit(precision="bfloat16")`` computes in float32 where
bfloat16 is emulated, and on a CPU with native bfloat16 keeps float32 activations and
rounds the dense matmuls' operands (``nnjax.train.objective.compute_dtype``).

Usage::

    python benchmarks/bench_mlp.py                      # full run, a few minutes on CPU
    python benchmarks/bench_mlp.py --quick              # tiny sizes (smoke test)
    python benchmarks/bench_mlp.py --peers nnjax,torch --batch-sizes 32,256

Writes ``benchmarks/results/mlp_<platform>.json`` and prints a table; ``ratio`` is
``peer median / nnjax median`` (above 1: the peer is slower).
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import _bfloat16 as B
import _cli as C
import _models as M
import _peers as P
import _runner as R

NAME = "mlp"
DEFAULT_PEERS = ("nnjax", "nnjax_scan", "nnjax_bf16", "nnjax_precision", *P.STANDARD[2:])
PEERS = (
    *DEFAULT_PEERS,
    *P.ON_REQUEST,
    "nnjax_no_donate",
    "nnjax_scan_bf16",
    "nnjax_scan_precision",
)


@dataclasses.dataclass(frozen=True)
class Config:
    """What is benchmarked: layer sizes, optimizer, learning rate, K for ``nnjax_scan``."""

    sizes: tuple[int, ...] = (784, 500, 300, 100, 10)
    optimizer: str = "adam"
    lr: float = 1e-3
    scan_steps: int = 8


# The same MLP in every framework: Dense layers of ``sizes``, ReLU between them.


def _nnjax_model(cfg: Config, dtype=None):
    from flax import nnx

    from nnjax import nn

    sizes = cfg.sizes
    return nn.MLP(sizes[0], sizes[1:-1], sizes[-1], dtype=dtype, rngs=nnx.Rngs(0))


def _flax_model(cfg: Config):
    from flax import nnx

    return M.flax_mlp(cfg.sizes, nnx.Rngs(0))


def _keras_model(cfg: Config):
    import keras

    return keras.Sequential([keras.Input((cfg.sizes[0],)), *M.keras_dense(cfg.sizes)])


def _torch_model(cfg: Config):
    import torch

    return torch.nn.Sequential(*M.torch_dense(cfg.sizes))


def builders(cfg: Config) -> dict[str, P.Builder]:
    """Every peer's builder (batch size -> ``Case``) for the MLP of ``cfg``."""
    import jax.numpy as jnp

    spec = P.Spec((cfg.sizes[0],), cfg.sizes[-1], cfg.optimizer, cfg.lr)
    p = functools.partial
    peers = P.standard_peers(
        spec,
        nnjax_model=p(_nnjax_model, cfg),
        flax_model=p(_flax_model, cfg),
        equinox_model=p(M.equinox_mlp, cfg.sizes),
        keras_model=p(_keras_model, cfg),
        torch_model=p(_torch_model, cfg),
    )
    peers["nnjax_scan"] = p(P.nnjax, spec, p(_nnjax_model, cfg), scan_steps=cfg.scan_steps)
    peers["nnjax_bf16"] = p(P.nnjax, spec, p(_nnjax_model, cfg, jnp.bfloat16))
    peers["nnjax_precision"] = p(P.nnjax, spec, p(_nnjax_model, cfg), precision="bfloat16")
    # fit's own dispatch of dense models (K updates per call) with each bfloat16 kind
    k = cfg.scan_steps
    peers["nnjax_scan_bf16"] = p(P.nnjax, spec, p(_nnjax_model, cfg, jnp.bfloat16), scan_steps=k)
    peers["nnjax_scan_precision"] = p(
        P.nnjax, spec, p(_nnjax_model, cfg), scan_steps=k, precision="bfloat16"
    )
    return peers


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs the benchmark, writes the JSON and prints the table."""
    parser = C.make_parser(__doc__.splitlines()[0], PEERS, DEFAULT_PEERS, (32, 256))
    parser.add_argument(
        "--sizes", type=C.int_list, default=None, help="layer sizes, e.g. 784,500,10"
    )
    parser.add_argument("--scan-steps", type=int, default=8, help="K for nnjax_scan")
    args = C.parse(parser, argv)
    sizes = tuple(args.sizes or ((64, 32, 16, 10) if args.quick else Config.sizes))
    if len(sizes) < 2:
        parser.error(f"--sizes needs at least an input and an output size, got {sizes}")
    cfg = Config(sizes, args.optimizer, args.lr, args.scan_steps)
    status = R.run_and_report(NAME, args, builders(cfg), dataclasses.asdict(cfg))
    B.print_verdict(NAME, args.out, args.quick)
    return status


if __name__ == "__main__":
    sys.exit(main())
