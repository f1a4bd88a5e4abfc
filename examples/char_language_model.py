"""Character-level language models on Python's own source: an LSTM against a Transformer.

The corpus needs no download: the source files of a fixed list of standard-library
modules (:data:`MODULES`, read through ``inspect.getsourcefile``), so every machine has
it (the exact text follows the Python version; the results record it). Characters
outside printable ASCII become one unknown symbol (vocabulary of 98). Each file is cut
90/5/5 into training, validation and test text; the windows are
non-overlapping runs of ``--context`` characters, each target the next character.

Two models, both trained through ``nnjax.train.fit(loss_fn=...)`` (the objective is the
mean next-character cross-entropy of every position, a custom loss over ``(B, T)``
targets), with Adam, gradient clipping and early stopping on the validation loss:

  lstm         nn.Embedding -> nn.LSTM (return_sequences) -> nn.Dense
  transformer  nn.Embedding * sqrt(D) + F.sinusoidal_position_encoding ->
               causal nn.TransformerEncoderBlock x L -> nn.LayerNorm -> nn.Dense

Reported: test bits per character of each model beside a bigram baseline (counts with
add-0.1 smoothing on the training text), and text sampled from each model (temperature
0.8) after a prompt taken from the test text.

    python examples/char_language_model.py                # ~30 min on 2 busy cores
    python examples/char_language_model.py --quick        # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import string
from pathlib import Path

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

NAME = "char_language_model"

#: The corpus: these modules' source files, in this order.
MODULES = (
    "argparse",
    "collections",
    "dataclasses",
    "difflib",
    "fractions",
    "functools",
    "heapq",
    "pathlib",
    "random",
    "statistics",
    "textwrap",
    "calendar",
)
#: ``--quick`` reads only these (a few thousand characters are kept).
QUICK_MODULES = ("textwrap", "heapq")
#: Printable ASCII (with newline and tab); anything else maps to id 0, the unknown symbol.
ALPHABET = "".join(sorted(set(string.printable) - {"\x0b", "\x0c", "\r"}))
VOCAB = len(ALPHABET) + 1
_IDS = {c: i + 1 for i, c in enumerate(ALPHABET)}


def encode(text: str) -> np.ndarray:
    """Character ids ``(len(text),)`` int32: 1 + position in :data:`ALPHABET`, else 0.

    Example:
      >>> decode(encode("def f():\\n")) == "def f():\\n"
      True
    """
    return np.fromiter((_IDS.get(c, 0) for c in text), np.int32, len(text))


def decode(ids) -> str:
    """The text of character ids (the unknown symbol as ``"?"``)."""
    return "".join(ALPHABET[i - 1] if i > 0 else "?" for i in np.asarray(ids).tolist())


def corpus(modules=MODULES) -> tuple[dict[str, str], dict[str, Path]]:
    """``({split: text}, {module: path})``: each file cut 90 / 5 / 5 in order."""
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    paths = {}
    for name in modules:
        path = Path(inspect.getsourcefile(importlib.import_module(name)) or "")
        paths[name] = path
        text = path.read_text(encoding="utf-8")
        a, b = int(0.9 * len(text)), int(0.95 * len(text))
        for split, piece in zip(parts, (text[:a], text[a:b], text[b:])):
            parts[split].append(piece)
    return {split: "\n".join(pieces) for split, pieces in parts.items()}, paths


def windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``(x, y)`` windows ``(N, context)``; ``y`` is ``x`` shifted by one.

    Example:
      >>> x, y = windows(np.arange(7), 3)
      >>> x.tolist(), y.tolist()
      ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    n = (len(ids) - 1) // context
    x = ids[: n * context].reshape(n, context)
    y = ids[1 : n * context + 1].reshape(n, context)
    return x.astype(np.int32), y.astype(np.int32)


def bigram_bits(train: np.ndarray, test: np.ndarray, alpha: float = 0.1) -> float:
    """Bits per character of a smoothed bigram model fitted on ``train``, on ``test``."""
    counts = np.full((VOCAB, VOCAB), alpha)
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    log_p = np.log2(counts / counts.sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[test[:-1], test[1:]]))


class LSTMLanguageModel(nnx.Module):
    """Embedding, one LSTM layer over the whole window, and a dense readout per step."""

    integer_inputs = ("ids",)  # token ids: fit's input check lets them through

    def __init__(self, vocab: int, *, features: int, hidden: int, rngs: nnx.Rngs):
        self.embed = nn.Embedding(vocab, features, rngs=rngs)
        self.lstm = nn.LSTM(features, hidden, return_sequences=True, rngs=rngs)
        self.head = nn.Dense(hidden, vocab, rngs=rngs)

    def __call__(self, ids: jax.Array) -> jax.Array:
        """Next-character logits ``(B, T, vocab)`` of ``ids (B, T)``."""
        return self.head(self.lstm(self.embed(ids)))


class TransformerLanguageModel(nnx.Module):
    """A small decoder-only Transformer: causal pre-norm encoder blocks."""

    integer_inputs = ("ids",)

    def __init__(
        self, vocab: int, *, features: int, heads: int, layers: int, dropout: float,
        rngs: nnx.Rngs,
    ):  # fmt: skip
        self.features = features
        self.embed = nn.Embedding(vocab, features, rngs=rngs)
        self.blocks = nn.Sequential(
            *(
                nn.TransformerEncoderBlock(
                    features, heads, causal=True, dropout_rate=dropout, rngs=rngs
                )
                for _ in range(layers)
            )
        )
        self.norm = nn.LayerNorm(features, rngs=rngs)
        self.head = nn.Dense(features, vocab, rngs=rngs)

    def __call__(self, ids: jax.Array) -> jax.Array:
        """Next-character logits ``(B, T, vocab)`` of ``ids (B, T)``."""
        h = self.embed(ids) * math.sqrt(self.features)
        h = h + F.sinusoidal_position_encoding(ids.shape[1], self.features)[None]
        return self.head(self.norm(self.blocks(h)))


def build(kind: str, quick: bool, seed: int) -> nnx.Module:
    """The model of ``kind`` (``"lstm"`` or ``"transformer"``); tiny with ``quick``."""
    rngs = nnx.Rngs(seed)
    if kind == "lstm":
        size = (16, 32) if quick else (48, 192)
        return LSTMLanguageModel(VOCAB, features=size[0], hidden=size[1], rngs=rngs)
    width, layers = (32, 1) if quick else (96, 2)
    return TransformerLanguageModel(
        VOCAB, features=width, heads=4, layers=layers, dropout=0.0, rngs=rngs
    )


def forward(model: nnx.Module, batch: nt.Batch) -> jax.Array:
    """The model's logits on the batch's windows (``fit``'s ``loss_fn`` calls it)."""
    return model(batch.x)


def test_bits(model: nnx.Module, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Bits per character of ``model`` (inference mode) over every window of ``(x, y)``."""
    model.eval()
    graphdef, state = nnx.split(model)

    @jax.jit
    def rows(state, x, y):
        logits = nnx.merge(graphdef, state)(x)
        return _tokens.token_nats(logits, y, jnp.ones(y.shape, jnp.float32))

    nats = _tokens.batched(lambda a, b: rows(state, a, b), x, y, size=batch_size)
    model.train()
    return float(np.mean(nats) / _tokens.LN2)


def sample(
    model: nnx.Module, prompt: np.ndarray, length: int, *, temperature: float, seed: int
) -> str:
    """``length`` characters drawn one at a time after ``prompt (context,)``.

    Each step runs the model on the last ``context`` characters (one compiled shape)
    and draws from ``softmax(logits / temperature)`` at the last position.
    """
    model.eval()
    graphdef, state = nnx.split(model)
    last_logits = jax.jit(lambda state, w: nnx.merge(graphdef, state)(w)[0, -1])
    rng = np.random.default_rng(seed)
    window, out = list(np.asarray(prompt)), []
    for _ in range(length):
        logits = np.asarray(last_logits(state, np.asarray([window], np.int32)), np.float64)
        p = np.exp((logits - logits.max()) / temperature)
        out.append(int(rng.choice(VOCAB, p=p / p.sum())))
        window = window[1:] + out[-1:]
    model.train()
    return decode(out)


def train_one(kind: str, data: dict, args: argparse.Namespace, epochs: int) -> dict:
    """Trains one model through ``fit(loss_fn=...)``; test bits per char and a sample."""
    model = build(kind, args.quick, args.seed)
    lr = 2e-3 if kind == "lstm" else 1e-3
    steps = max(epochs * math.ceil(len(data["train"][0]) / args.batch_size), 1)
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(100, steps // 10 + 1), steps)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    stop = nt.EarlyStopping("val_loss", patience=3, restore_best_weights=True)
    print(f"\n== {kind}: {nn.count_params(model):,} parameters, {epochs} epoch(s)")
    with _common.Timer() as timer:
        history = nt.fit(
            model, data["train"], loss_fn=_tokens.token_loss_fn(forward),
            optimizer=optimizer, epochs=epochs, batch_size=args.batch_size,
            validation_data=data["val"], callbacks=[stop], seed=args.seed,
            verbose=2,
        )  # fmt: skip
    bits = test_bits(model, *data["test"], batch_size=args.batch_size)
    prompt = data["test"][0][0]
    text = sample(model, prompt, 100 if args.quick else 400, temperature=0.8, seed=args.seed)
    print(f"{kind}: test {bits:.3f} bits/char; sample after {decode(prompt)!r}:\n{text}")
    return {
        "model": kind,
        "parameters": nn.count_params(model),
        "test_bits_per_char": bits,
        "train_s": round(timer.seconds, 1),
        "epochs_run": len(history),
        "best_epoch": None if stop.best_epoch is None else stop.best_epoch + 1,
        "prompt": decode(prompt),
        "sample": text,
        "history": history.history,
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = _common.make_parser(NAME, __doc__, epochs=None)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=("lstm", "transformer"),
        default=["lstm", "transformer"],
        help="models to train (default: both)",
    )
    parser.add_argument("--context", type=int, default=96, help="window length (96)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (32)")
    return parser.parse_args(argv)


#: Default epochs per model (measured: 18 and 10 min of training on 2 busy cores).
EPOCHS = {"lstm": 10, "transformer": 3}


def main(argv=None) -> dict:
    """Trains the selected models, prints the table and writes ``results.json``."""
    args = parse_args(argv)
    text, paths = corpus(QUICK_MODULES if args.quick else MODULES)
    if args.quick:
        text = {"train": text["train"][:8192], "val": text["val"][:2048], "test": text["test"]}
        args.context = min(args.context, 32)
    ids = {split: encode(t) for split, t in text.items()}
    data = {split: windows(i, args.context) for split, i in ids.items()}
    bigram = bigram_bits(ids["train"], ids["test"])
    print(
        f"corpus: {len(ids['train']):,} / {len(ids['val']):,} / {len(ids['test']):,} "
        f"characters (train / val / test) from {len(paths)} files; "
        f"bigram baseline {bigram:.3f} bits/char"
    )
    rows = [
        train_one(kind, data, args, _common.epochs_for(args, EPOCHS[kind])) for kind in args.models
    ]
    table = [{"model": "bigram (add-0.1)", "test_bits_per_char": bigram}, *rows]
    print()
    _common.print_table(
        table, ("model", "parameters", "epochs_run", "test_bits_per_char", "train_s")
    )
    results = {"bigram_test_bits_per_char": bigram, "models": rows}
    _common.write_results(
        args,
        NAME,
        results,
        corpus={name: str(path) for name, path in paths.items()},
        characters={split: len(i) for split, i in ids.items()},
        context=args.context,
        batch_size=args.batch_size,
        vocab=VOCAB,
    )
    return results


if __name__ == "__main__":
    main()
