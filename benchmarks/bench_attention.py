"""Times training and inference of one pre-norm Transformer block in nnjax and its peers.

The model is the same everywhere: inputs ``(B, T, D)`` (``--seq-len`` 128 steps of
``--dim`` 256 features, random float32, as if already embedded), one pre-norm
Transformer encoder block (``--heads`` 4 heads, MLP width ``4 * D`` with GELU, layer
norms with epsilon 1e-5, no dropout), mean over time, a dense layer of ``--classes``
10 logits, softmax cross-entropy, trained with Adam (or SGD). For each batch size
(default 32) and peer it times one training step and one forward pass, the first call
(trace + compile + run) apart from the median.

Peers:

* ``nnjax``: ``nnjax.nn.TransformerEncoderBlock`` + ``GlobalAvgPool`` + ``Dense``
  (``F.transformer_encoder_block``, attention through ``jax.nn.dot_product_attention``);
  ``nnjax.train`` pure step under ``jax.jit`` with donation (``nnjax_no_donate``: the
  same without donation); ``nnjax_precision``: ``nnjax`` stepped as
  ``fit(precision="bfloat16")`` steps it; after the table, the ``bfloat16:`` line (the
  hardware's case and issue 15's goal for it);
* ``flax_nnx`` / ``flax_nnx_partial``: ``nnx.LayerNorm`` + ``nnx.MultiHeadAttention``
  + ``nnx.Linear`` under ``nnx.jit`` / ``nnx.jit_partial``;
* ``equinox``: ``eqx.nn.LayerNorm`` + ``eqx.nn.MultiheadAttention`` + ``eqx.nn.Linear``
  for one sequence, ``jax.vmap``-ped over the batch, ``eqx.filter_jit``;
* ``keras``: ``LayerNormalization`` + ``MultiHeadAttention`` + ``Dense`` (JAX backend);
* ``torch``: ``nn.TransformerEncoderLayer(norm_first=True, batch_first=True)`` +
  ``Linear``, eager (``torch_compile`` on request). Its GELU is the exact (erf) one;
  the JAX peers use the tanh approximation (``jax.nn.gelu``'s default).

Usage::

    python benchmarks/bench_attention.py                 # full run (T 128, D 256, 4 heads)
    python benchmarks/bench_attention.py --quick         # tiny sizes (smoke test)
    python benchmarks/bench_attention.py --threads 1 --clock cpu  # on a shared machine

Writes ``benchmarks/results/attention_<platform>.json`` and prints a table; ``ratio``
is ``peer median / nnjax median`` (above 1: the peer is slower).
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import _bfloat16 as B
import _cli as C
import _peers as P
import _runner as R
import jax
import jax.numpy as jnp

NAME = "attention"
DEFAULT_PEERS = (*P.STANDARD[:2], "nnjax_precision", *P.STANDARD[2:])
PEERS = (*DEFAULT_PEERS, *P.ON_REQUEST)


@dataclasses.dataclass(frozen=True)
class Config:
    """What is benchmarked: sequence length, width, heads, classes, optimizer."""

    seq_len: int = 128
    dim: int = 256
    heads: int = 4
    num_classes: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3

    @property
    def mlp(self) -> int:
        return 4 * self.dim


def _nnjax_model(cfg: Config):
    from flax import nnx

    from nnjax import nn

    rngs = nnx.Rngs(0)
    return nn.Sequential(
        nn.TransformerEncoderBlock(cfg.dim, cfg.heads, mlp_features=cfg.mlp, rngs=rngs),
        nn.GlobalAvgPool(),
        nn.Dense(cfg.dim, cfg.num_classes, rngs=rngs),
    )


def _flax_model(cfg: Config):
    from flax import nnx

    class FlaxBlock(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.norm1 = nnx.LayerNorm(cfg.dim, epsilon=1e-5, rngs=rngs)
            self.attention = nnx.MultiHeadAttention(
                cfg.heads, cfg.dim, decode=False, deterministic=True, rngs=rngs
            )
            self.norm2 = nnx.LayerNorm(cfg.dim, epsilon=1e-5, rngs=rngs)
            self.mlp_in = nnx.Linear(cfg.dim, cfg.mlp, rngs=rngs)
            self.mlp_out = nnx.Linear(cfg.mlp, cfg.dim, rngs=rngs)
            self.head = nnx.Linear(cfg.dim, cfg.num_classes, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            x = x + self.attention(self.norm1(x))
            x = x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm2(x))))
            return self.head(jnp.mean(x, axis=1))

    return FlaxBlock(nnx.Rngs(0))


def _equinox_model(cfg: Config, key: jax.Array):
    import equinox as eqx

    class EqxBlock(eqx.Module):
        norm1: eqx.nn.LayerNorm
        attention: eqx.nn.MultiheadAttention
        norm2: eqx.nn.LayerNorm
        mlp_in: eqx.nn.Linear
        mlp_out: eqx.nn.Linear
        head: eqx.nn.Linear

        def __init__(self, key: jax.Array):
            k_attn, k_in, k_out, k_head = jax.random.split(key, 4)
            self.norm1 = eqx.nn.LayerNorm(cfg.dim, eps=1e-5)
            self.attention = eqx.nn.MultiheadAttention(
                cfg.heads, cfg.dim, use_query_bias=True, use_key_bias=True,
                use_value_bias=True, use_output_bias=True, key=k_attn,
            )  # fmt: skip
            self.norm2 = eqx.nn.LayerNorm(cfg.dim, eps=1e-5)
            self.mlp_in = eqx.nn.Linear(cfg.dim, cfg.mlp, key=k_in)
            self.mlp_out = eqx.nn.Linear(cfg.mlp, cfg.dim, key=k_out)
            self.head = eqx.nn.Linear(cfg.dim, cfg.num_classes, key=k_head)

        def __call__(self, x: jax.Array) -> jax.Array:  # one sequence, (T, D)
            h = jax.vmap(self.norm1)(x)
            x = x + self.attention(h, h, h)
            h = jax.nn.gelu(jax.vmap(self.mlp_in)(jax.vmap(self.norm2)(x)))
            x = x + jax.vmap(self.mlp_out)(h)
            return self.head(jnp.mean(x, axis=0))

    return EqxBlock(key)


def _keras_model(cfg: Config):
    import keras

    inputs = keras.Input((cfg.seq_len, cfg.dim))
    h = keras.layers.LayerNormalization(epsilon=1e-5)(inputs)
    h = keras.layers.MultiHeadAttention(cfg.heads, cfg.dim // cfg.heads)(h, h)
    x = inputs + h
    h = keras.layers.LayerNormalization(epsilon=1e-5)(x)
    h = keras.layers.Dense(cfg.mlp, activation="gelu")(h)
    x = x + keras.layers.Dense(cfg.dim)(h)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(cfg.num_classes)(x))


def _torch_model(cfg: Config):
    import torch

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = torch.nn.TransformerEncoderLayer(
                cfg.dim, cfg.heads, cfg.mlp, dropout=0.0, activation="gelu",
                batch_first=True, norm_first=True,
            )  # fmt: skip
            self.head = torch.nn.Linear(cfg.dim, cfg.num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.block(x).mean(dim=1))

    return TorchBlock()


def builders(cfg: Config) -> dict[str, P.Builder]:
    """Every peer's builder (batch size -> ``Case``) for the Transformer block of ``cfg``."""
    spec = P.Spec((cfg.seq_len, cfg.dim), cfg.num_classes, cfg.optimizer, cfg.lr)
    p = functools.partial
    peers = P.standard_peers(
        spec,
        nnjax_model=p(_nnjax_model, cfg),
        flax_model=p(_flax_model, cfg),
        equinox_model=p(_equinox_model, cfg),
        keras_model=p(_keras_model, cfg),
        torch_model=p(_torch_model, cfg),
    )
    peers["nnjax_precision"] = p(P.nnjax, spec, p(_nnjax_model, cfg), precision="bfloat16")
    return peers


QUICK = Config(seq_len=8, dim=16, heads=2)


def main(argv: list[str] | None = None) -> int:
    """Parses the command line, runs the benchmark, writes the JSON and prints the table."""
    parser = C.make_parser(__doc__.splitlines()[0], PEERS, DEFAULT_PEERS, (32,))
    for name in ("seq_len", "dim", "heads"):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=None, help=f"default {getattr(Config, name)}")
    args = C.parse(parser, argv)
    base = QUICK if args.quick else Config()
    sizes = {n: getattr(args, n) or getattr(base, n) for n in ("seq_len", "dim", "heads")}
    if min(sizes.values()) < 1 or sizes["dim"] % sizes["heads"]:
        parser.error(f"sizes must be positive and heads must divide dim, got {sizes}")
    cfg = dataclasses.replace(base, **sizes, optimizer=args.optimizer, lr=args.lr)
    status = R.run_and_report(NAME, args, builders(cfg), dataclasses.asdict(cfg))
    B.print_verdict(NAME, args.out, args.quick)
    return status


if __name__ == "__main__":
    sys.exit(main())
