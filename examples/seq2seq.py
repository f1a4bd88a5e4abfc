"""Sequence to sequence with attention: adding (or reversing) digit strings.

A synthetic task, no data files: the source is ``"a+b"`` (each operand a uniform integer
below ``10**digits``, written without leading zeros) and the target the digits of
``a + b`` then an end symbol; ``--task reverse`` maps a digit string of 1 to ``2*digits``
characters to its reverse instead. Sources are right-padded; the held-out problems
never occur in the training set.

The model is an encoder-decoder with attention, all from ``nnjax.nn``:

  encoder    nn.Embedding -> nn.Bidirectional LSTM over the padded source (``lengths``)
  decoder    nn.LSTM started from the encoder's final states (both directions joined),
             reading the target shifted right (teacher forcing: a start symbol, then the
             true previous token)
  attention  nn.MultiHeadAttention from each decoder step over the encoder outputs, with
             a key-padding mask; logits from nn.Dense on [decoder state, context]

It trains through ``nnjax.train.fit(loss_fn=...)``: the objective is the mean token
cross-entropy of the real target tokens (end symbol included, padding excluded). The
test score is exact-sequence accuracy of greedy decoding (each step feeds the model's
own previous token), beside per-token accuracy under teacher forcing.

    python examples/seq2seq.py                  # ~15 min on 2 busy cores
    python examples/seq2seq.py --task reverse
    python examples/seq2seq.py --quick          # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import math
from typing import cast

import _common
import _tokens
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import nnjax.functional as F
from nnjax import nn
from nnjax import train as nt

NAME = "seq2seq"
PAD, BOS, EOS = 0, 1, 2
SYMBOLS = "_^$0123456789+"  # PAD, BOS, EOS, digits, plus
VOCAB = len(SYMBOLS)


def encode(text: str, length: int) -> np.ndarray:
    """Ids of ``text`` right-padded with ``PAD`` to ``length``.

    Example:
      >>> encode("12+3", 6).tolist()
      [4, 5, 13, 6, 0, 0]
    """
    ids = [SYMBOLS.index(c) for c in text]
    return np.asarray(ids + [PAD] * (length - len(ids)), np.int32)


def decode(ids) -> str:
    """The text of ``ids`` up to the first ``EOS`` (padding dropped)."""
    out = []
    for i in np.asarray(ids).tolist():
        if i == EOS:
            break
        out.append("" if i in (PAD, BOS) else SYMBOLS[i])
    return "".join(out)


def problems(task: str, digits: int, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``n`` distinct ``(source, target)`` texts of ``task`` (``"add"`` or ``"reverse"``)."""
    seen: dict[str, str] = {}
    while len(seen) < n:
        if task == "add":
            a, b = rng.integers(0, 10**digits, size=2)
            seen.setdefault(f"{a}+{b}", str(a + b))
        else:
            size = rng.integers(1, 2 * digits + 1)
            s = "".join(map(str, rng.integers(0, 10, size=size)))
            seen.setdefault(s, s[::-1])
    return list(seen.items())


def targets(texts: list[str], length: int) -> np.ndarray:
    """Target ids: each text, ``EOS``, then ``PAD`` up to ``length``.

    Example:
      >>> targets(["12"], 4).tolist()
      [[4, 5, 2, 0]]
    """
    return np.stack([encode(t + "$", length) for t in texts])


def make_split(
    task: str, digits: int, sizes: tuple[int, ...], seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Disjoint ``(source ids, target ids)`` sets of ``sizes`` (train, val, test).

    Targets end with ``EOS`` and are padded to ``digits + 2`` tokens (add) or
    ``2 * digits + 1`` (reverse).
    """
    drawn = problems(task, digits, sum(sizes), np.random.default_rng(seed))
    src_len = 2 * digits + 1 if task == "add" else 2 * digits
    tgt_len = digits + 2 if task == "add" else 2 * digits + 1
    src = np.stack([encode(s, src_len) for s, _ in drawn])
    tgt = targets([t for _, t in drawn], tgt_len)
    cuts = np.cumsum(sizes)[:-1]
    return list(zip(np.split(src, cuts), np.split(tgt, cuts)))


class Seq2Seq(nnx.Module):
    """Bidirectional LSTM encoder, LSTM decoder with multi-head attention over it."""

    integer_inputs = ("src", "inputs")  # token ids: fit's input check lets them through

    def __init__(self, *, features: int, hidden: int, heads: int, rngs: nnx.Rngs):
        width = 2 * hidden  # both encoder directions, joined
        self.embed = nn.Embedding(VOCAB, features, rngs=rngs)
        self.encoder = nn.Bidirectional(
            features, hidden, return_sequences=True, return_state=True, rngs=rngs
        )
        self.decoder = nn.LSTM(features, width, return_sequences=True, rngs=rngs)
        self.attention = nn.MultiHeadAttention(heads, width, rngs=rngs)
        self.head = nn.Dense(2 * width, VOCAB, rngs=rngs)

    def encode(self, src: jax.Array) -> tuple[jax.Array, jax.Array, F.LSTMState]:
        """``(memory (B, S, 2H), key mask (B, S), decoder start state)`` of ``src``."""
        mask = src != PAD
        lengths = jnp.sum(mask, axis=1)
        memory, (fwd, bwd) = self.encoder(self.embed(src), lengths=lengths)
        state = F.LSTMState(
            jnp.concatenate([fwd.h, bwd.h], axis=-1), jnp.concatenate([fwd.c, bwd.c], axis=-1)
        )
        return memory, mask, state

    def decode(self, encoded, inputs: jax.Array) -> jax.Array:
        """Logits ``(B, T, VOCAB)`` of the next token after each of ``inputs (B, T)``."""
        memory, mask, state = encoded
        h = self.decoder(self.embed(inputs), state)
        context = self.attention(h, memory, mask=mask)
        return self.head(jnp.concatenate([h, context], axis=-1))

    def __call__(self, src: jax.Array, inputs: jax.Array) -> jax.Array:
        """Teacher-forced logits ``(B, T, VOCAB)``: ``inputs`` is the shifted target."""
        return self.decode(self.encode(src), inputs)


def shift_right(tgt: jax.Array) -> jax.Array:
    """The decoder's teacher-forced inputs: ``BOS`` then the target without its last token.

    Example:
      >>> shift_right(jnp.array([[4, 5, 2]])).tolist()
      [[1, 4, 5]]
    """
    return jnp.concatenate([jnp.full_like(tgt[:, :1], BOS), tgt[:, :-1]], axis=1)


def teacher_forced(model: Seq2Seq, src: jax.Array, tgt: jax.Array) -> jax.Array:
    """The logits with the true previous tokens fed in."""
    return model(src, shift_right(tgt))


#: ``fit``'s objective: mean cross-entropy of the real target tokens (``PAD`` excluded).
loss_fn = _tokens.token_loss_fn(
    lambda model, batch: teacher_forced(cast(Seq2Seq, model), batch.x, batch.y),
    target_weights=lambda y: y != PAD,
)


def greedy(model: Seq2Seq, src: jax.Array, length: int) -> jax.Array:
    """Greedy decoding ``(B, length)``: each step feeds the previous prediction back.

    The decoder reruns over the whole buffer each step (one compiled shape); being
    causal, its output at step ``t`` depends only on the tokens before it.
    """
    encoded = model.encode(src)
    inputs = jnp.full((src.shape[0], length), BOS, jnp.int32)

    def step(t, inputs):
        token = jnp.argmax(model.decode(encoded, inputs)[:, t], axis=-1).astype(jnp.int32)
        return inputs.at[:, t + 1].set(token)

    inputs = jax.lax.fori_loop(0, length - 1, step, inputs)
    last = jnp.argmax(model.decode(encoded, inputs)[:, -1], axis=-1).astype(jnp.int32)
    return jnp.concatenate([inputs[:, 1:], last[:, None]], axis=1)


def exact_match(predicted: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Per row: every token up to and including the target's ``EOS`` is right.

    Example:
      >>> exact_match(np.array([[4, 2, 7], [4, 5, 2]]), np.array([[4, 2, 0], [4, 2, 0]]))
      array([ True, False])
    """
    real = tgt != PAD
    return np.all((predicted == tgt) | ~real, axis=1)


def score(model: Seq2Seq, data: tuple[np.ndarray, np.ndarray], batch_size: int) -> dict:
    """Exact-sequence accuracy (greedy decoding) and teacher-forced token accuracy."""
    src, tgt = data
    model.eval()
    graphdef, state = nnx.split(model)
    length = tgt.shape[1]

    @jax.jit
    def run(state, src, tgt):
        model = nnx.merge(graphdef, state)
        forced = jnp.argmax(teacher_forced(model, src, tgt), axis=-1)
        return jnp.stack([greedy(model, src, length), forced], axis=1)

    out = _tokens.batched(lambda s, t: run(state, s, t), src, tgt, size=batch_size)
    model.train()
    real = tgt != PAD
    return {
        "exact_match": float(np.mean(exact_match(out[:, 0], tgt))),
        "token_accuracy_teacher_forced": float(np.sum((out[:, 1] == tgt) & real) / real.sum()),
        "examples": [
            {"source": decode(s), "target": decode(t), "predicted": decode(p)}
            for s, t, p in zip(src[:8], tgt[:8], out[:8, 0])
        ],
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=12)
    parser.add_argument("--task", choices=("add", "reverse"), default="add", help="(add)")
    parser.add_argument("--digits", type=int, default=3, help="operand digits (3)")
    parser.add_argument("--train-size", type=int, default=40_000, help="(40,000)")
    parser.add_argument("--test-size", type=int, default=2_000, help="val and test each (2,000)")
    parser.add_argument("--hidden", type=int, default=64, help="encoder units per direction")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Trains the model, prints the test scores and writes ``results.json``."""
    args = parse_args(argv)
    epochs = _common.epochs_for(args, args.epochs)
    if args.quick:
        args.digits, args.train_size, args.test_size, args.hidden = 2, 512, 128, 16
    sizes = (args.train_size, args.test_size, args.test_size)
    train, val, test = make_split(args.task, args.digits, sizes, args.seed)
    model = Seq2Seq(features=32, hidden=args.hidden, heads=4, rngs=nnx.Rngs(args.seed))
    steps = max(epochs * math.ceil(args.train_size / args.batch_size), 1)
    schedule = optax.warmup_cosine_decay_schedule(0.0, 3e-3, min(200, steps // 10 + 1), steps)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    print(f"{args.task}, {args.digits} digits: {nn.count_params(model):,} parameters")
    with _common.Timer() as timer:
        history = nt.fit(
            model, train, loss_fn=loss_fn, optimizer=optimizer, epochs=epochs,
            batch_size=args.batch_size, validation_data=val, seed=args.seed,
            verbose=2,
        )  # fmt: skip
    results = {**score(model, test, 500), "train_s": round(timer.seconds, 1)}
    print(
        f"test exact-sequence accuracy {results['exact_match']:.4f} (greedy), token "
        f"accuracy {results['token_accuracy_teacher_forced']:.4f} (teacher forced)"
    )
    for row in results["examples"]:
        print(f"  {row['source']:>12} -> {row['predicted']:<10} (target {row['target']})")
    results.update(epochs_run=len(history), history=history.history)
    _common.write_results(
        args, NAME, results, task=args.task, digits=args.digits, train_size=args.train_size,
        test_size=args.test_size, hidden=args.hidden, batch_size=args.batch_size,
        parameters=nn.count_params(model), optimizer="clip 1.0 + adam, warmup-cosine 3e-3",
    )  # fmt: skip
    return results


if __name__ == "__main__":
    main()
