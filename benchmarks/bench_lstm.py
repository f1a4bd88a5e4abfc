"""Times training and inference of an LSTM (or GRU) sequence classifier in nnjax and peers.

The model is the same everywhere: one LSTM layer (``--cell gru``: one GRU layer, each
framework's own GRU cell, the reset gate applied after the recurrent matmul as in
PyTorch; ``--hidden`` 128 units, zero initial state) over batch-major sequences
``(B, T, F)`` (``--seq-len`` 64 steps of ``--features`` 16, random float32), its last
hidden state into a dense layer of ``--classes`` 10 logits, softmax cross-entropy,
trained with Adam (or SGD). For each batch size and peer it times one training step
(through the whole sequence and back) and one forward pass, the first call (trace +
compile + run) apart from the median.

Peers:

* ``nnjax``: ``nnjax.nn.SequenceClassifier`` (``F.lstm`` with the formulation the
  library picks for the backend); ``nnjax.train`` pure step under ``jax.jit`` with
  donation (``nnjax_no_donate``: the same without buffer donation);
* ``nnjax_bf16``: ``nnjax`` with the model built with ``dtype=jnp.bfloat16`` (bfloat16
  compute, float32 parameters); ``nnjax_precision``: ``nnjax`` stepped as
  ``fit(precision="bfloat16")`` steps it; after the table, the ``bfloat16:`` line (the
  hardware's case and issue 15's goal for it);
* ``nnjax_per_step`` and ``nnjax_precompute``: the same LSTM and head calling
  ``F.lstm(..., precompute_inputs=False / True)`` explicitly (input projection inside
  the scan, or for all steps in one matmul before it);
* ``flax_nnx`` / ``flax_nnx_partial``: ``nnx.RNN(nnx.OptimizedLSTMCell)`` + ``nnx.Linear``
  under ``nnx.jit`` / ``nnx.jit_partial``;
* ``equinox``: ``eqx.nn.LSTMCell`` under ``lax.scan`` for one sequence, ``jax.vmap``-ped
  over the batch, ``eqx.filter_jit``;
* ``keras``: ``keras.layers.LSTM`` + ``Dense`` (JAX backend, ``jit_compile=True``);
* ``torch``: ``torch.nn.LSTM(batch_first=True)`` + ``Linear``, eager (``torch_compile``
  on request);
* on request, the diagnostics ``nnjax_ynn_dots`` and ``nnjax_eigen_dots``: the ``nnjax``
  peer with its matmuls on YNNPACK (XLA:CPU's default) or on Eigen, whichever ``fit``
  does not pick for the model and CPU (``nnjax.train.compiled.eigen_dots_for``);
* on request, the diagnostic ``torch_aten``: the ``torch`` peer with oneDNN off. On CPU
  ``nn.LSTM`` in float32 runs as oneDNN's fused RNN primitive (JIT-compiled kernels,
  forward and backward); with oneDNN off it is ATen's loop of one matmul and one gate
  kernel per step, the formulation the JAX peers compile to.

Usage::

    python benchmarks/bench_lstm.py                     # full run
    python benchmarks/bench_lstm.py --quick             # tiny sizes (smoke test)
    python benchmarks/bench_lstm.py --threads 1 --clock cpu  # on a shared machine
    python benchmarks/bench_lstm.py --cell gru          # the GRU classifier

Writes ``benchmarks/results/lstm_<platform>.json`` (``gru_<platform>.json``) and prints a
table; ``ratio`` is ``peer median / nnjax median`` (above 1: the peer is slower).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from typing import Any, cast

import _bfloat16 as B
import _cli as C
import _harness as H
import _peers as P
import _runner as R
import jax
import jax.numpy as jnp

NAME = "lstm"
DEFAULT_PEERS = (
    *P.STANDARD[:2],
    "nnjax_per_step",
    "nnjax_precompute",
    *B.STEP_PEERS,
    *P.STANDARD[2:],
)
PEERS = (*DEFAULT_PEERS, *P.ON_REQUEST, "nnjax_ynn_dots", "nnjax_eigen_dots", "torch_aten")


@dataclasses.dataclass(frozen=True)
class Config:
    """What is benchmarked: sequence length, features, hidden size, classes, optimizer."""

    seq_len: int = 64
    features: int = 16
    hidden: int = 128
    num_classes: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    cell: str = "lstm"


# The same model in every framework: LSTM (or GRU) from zeros, last hidden state, logits.


def _nnjax_model(cfg: Config, dtype: Any = None):
    from flax import nnx

    from nnjax import nn

    return nn.SequenceClassifier(
        cfg.features, cfg.hidden, cfg.num_classes, cell=cfg.cell, dtype=dtype, rngs=nnx.Rngs(0)
    )


def _nnjax_formulation(cfg: Config, precompute: bool):
    """``nnjax.nn`` layers, the cell run through ``F.lstm``/``F.gru`` with a fixed formulation."""
    from flax import nnx

    import nnjax.functional as F
    from nnjax import nn

    cells: dict[str, tuple[type[nn.LSTM] | type[nn.GRU], Callable[..., Any]]] = {
        "lstm": (nn.LSTM, F.lstm),
        "gru": (nn.GRU, F.gru),
    }
    layer, run = cells[cfg.cell]

    class RecurrentClassifier(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.rnn = layer(cfg.features, cfg.hidden, rngs=rngs)
            self.head = nn.Dense(cfg.hidden, cfg.num_classes, rngs=rngs)

        def __call__(self, xs: jax.Array) -> jax.Array:
            final, _ = run(self.rnn.params(), xs, precompute_inputs=precompute)
            return self.head(final.h if isinstance(final, F.LSTMState) else final)  # as nn's

    return RecurrentClassifier(nnx.Rngs(0))


def _flax_model(cfg: Config):
    from flax import nnx

    cell = {"lstm": nnx.OptimizedLSTMCell, "gru": nnx.GRUCell}[cfg.cell]

    class FlaxRNN(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.rnn = nnx.RNN(cell(cfg.features, cfg.hidden, rngs=rngs))
            self.head = nnx.Linear(cfg.hidden, cfg.num_classes, rngs=rngs)

        def __call__(self, xs: jax.Array) -> jax.Array:
            return self.head(self.rnn(xs)[:, -1])

    return FlaxRNN(nnx.Rngs(0))


def _equinox_model(cfg: Config, key: jax.Array):
    import equinox as eqx

    lstm = cfg.cell == "lstm"

    class EqxRNN(eqx.Module):
        cell: eqx.nn.LSTMCell | eqx.nn.GRUCell
        head: eqx.nn.Linear

        def __init__(self, key: jax.Array):
            k_cell, k_head = jax.random.split(key)
            cell = eqx.nn.LSTMCell if lstm else eqx.nn.GRUCell
            self.cell = cell(cfg.features, cfg.hidden, key=k_cell)
            self.head = eqx.nn.Linear(cfg.hidden, cfg.num_classes, key=k_head)

        def __call__(self, xs: jax.Array) -> jax.Array:  # one sequence, (T, F)
            zeros = jnp.zeros(cfg.hidden, xs.dtype)
            step = lambda state, x: (self.cell(x, state), None)
            state, _ = jax.lax.scan(step, (zeros, zeros) if lstm else zeros, xs)
            return self.head(cast(jax.Array, state[0] if lstm else state))

    return EqxRNN(key)


def _keras_model(cfg: Config):
    import keras  # type: ignore[import-untyped]

    return keras.Sequential(
        [
            keras.Input((cfg.seq_len, cfg.features)),
            {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.cell](cfg.hidden),
            keras.layers.Dense(cfg.num_classes),
        ]
    )


def _torch_model(cfg: Config):
    import torch

    cell = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]

    class TorchRNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cell(cfg.features, cfg.hidden, batch_first=True)
            self.head = torch.nn.Linear(cfg.hidden, cfg.num_classes)

        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            ys, _ = self.rnn(xs)
            return self.head(ys[:, -1])

    return TorchRNN()


def builders(cfg: Config) -> dict[str, P.Builder]:
    """Every peer's builder (batch size -> ``Case``) for the LSTM classifier of ``cfg``."""
    spec = P.Spec((cfg.seq_len, cfg.features), cfg.num_classes, cfg.optimizer, cfg.lr)
    p = functools.partial
    peers = P.standard_peers(
        spec,
        nnjax_model=p(_nnjax_model, cfg),
        flax_model=p(_flax_model, cfg),
        equinox_model=p(_equinox_model, cfg),
        keras_model=p(_keras_model, cfg),
        torch_model=p(_torch_model, cfg),
    )
    for name, precompute in (("nnjax_per_step", False), ("nnjax_precompute", True)):
        peers[name] = p(P.nnjax, spec, p(_nnjax_formulation, cfg, precompute))
    peers["nnjax_bf16"] = p(P.nnjax, spec, p(_nnjax_model, cfg, jax.numpy.bfloat16))
    peers["nnjax_precision"] = p(P.nnjax, spec, p(_nnjax_model, cfg), precision="bfloat16")
    peers["nnjax_ynn_dots"] = p(P.nnjax, spec, p(_nnjax_model, cfg), eigen_dots=False)
    peers["nnjax_eigen_dots"] = p(P.nnjax, spec, p(_nnjax_model, cfg), eigen_dots=True)
    peers["torch_aten"] = p(P.torch, spec, p(_torch_model, cfg), onednn=False)
    return peers


QUICK = Config(seq_len=8, features=4, hidden=16)


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs the benchmark, writes the JSON and prints the table."""
    parser = C.make_parser(__doc__.splitlines()[0], PEERS, DEFAULT_PEERS, (32, 128))
    for name in ("seq_len", "features", "hidden"):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=None, help=f"default {getattr(Config, name)}")
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="default lstm")
    args = C.parse(parser, argv)
    base = QUICK if args.quick else Config()
    sizes = {n: getattr(args, n) or getattr(base, n) for n in ("seq_len", "features", "hidden")}
    if min(sizes.values()) < 1:
        parser.error(f"sizes must be positive, got {sizes}")
    cfg = dataclasses.replace(base, **sizes, optimizer=args.optimizer, lr=args.lr, cell=args.cell)
    config = {**dataclasses.asdict(cfg), "nnjax_precompute_inputs": _library_formulation()}
    if args.out is None and cfg.cell != "lstm":
        args.out = H.default_out(cfg.cell, args.quick)  # results/gru_<platform>.json
    status = R.run_and_report(NAME, args, builders(cfg), config)
    B.print_verdict(NAME, args.out, args.quick)
    return status


def _library_formulation() -> bool | None:
    """Whether ``F.lstm(precompute_inputs=None)`` precomputes on this backend (recorded).

    nnjax has no public query for it yet, so this reads the private chooser; ``None``
    if that is gone.
    """
    from nnjax.functional import sequence

    choose = getattr(sequence, "_default_precompute", None)
    return None if choose is None else bool(choose())


if __name__ == "__main__":
    sys.exit(main())
