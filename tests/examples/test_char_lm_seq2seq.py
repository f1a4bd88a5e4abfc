"""Tests of the sequence examples (``char_language_model.py``, ``seq2seq.py``, ``_tokens.py``).

The parts are checked against independent computations; the ``--quick`` runs (compile
time dominates them) are marked slow.
"""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nnjax.train.data import Batch


def _results(out: Path) -> dict:
    record = json.loads((out / "results.json").read_text())
    assert record["quick"] is True and record["environment"]["jax"]
    return record["results"]


def test_token_loss_fn_skips_padded_rows_and_padding_targets(load):
    tokens = load("_tokens")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 5)).astype(np.float32)
    y = rng.integers(1, 5, (3, 4)).astype(np.int32)
    y[0, 2:] = 0  # padding targets of row 0
    mask = np.array([1.0, 1.0, 0.0], np.float32)  # row 2 pads the batch
    batch = Batch(None, jnp.asarray(y), jnp.asarray(mask), jnp.asarray(mask))
    loss_fn = tokens.token_loss_fn(lambda model, b: jnp.asarray(logits), lambda t: t != 0)
    loss, logs = loss_fn(None, batch)
    # reference: log-softmax by hand, mean over each row's real targets, mean over rows 0-1
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, y[..., None], -1)[..., 0]
    expected = (nll[0, :2].mean() + nll[1].mean()) / 2
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        float(logs["bits_per_token"]), expected / math.log(2), rtol=1e-5, atol=1e-6
    )


def test_batched_pads_the_last_chunk_to_one_shape(load):
    tokens = load("_tokens")
    shapes = []
    out = tokens.batched(lambda a: shapes.append(a.shape) or a * 2, np.arange(7), size=3)
    np.testing.assert_array_equal(out, np.arange(7) * 2)
    assert set(shapes) == {(3,)}


# --- char_language_model --------------------------------------------------------------


def test_corpus_is_the_fixed_stdlib_files_cut_90_5_5(load):
    lm = load("char_language_model")
    text, paths = lm.corpus(("textwrap",))
    source = paths["textwrap"].read_text(encoding="utf-8")
    assert text["train"] + text["val"] + text["test"] == source
    assert abs(len(text["train"]) - 0.9 * len(source)) <= 1
    ids = lm.encode(source)
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < lm.VOCAB
    assert lm.decode(lm.encode("x = 1\n\tpass")) == "x = 1\n\tpass"
    assert lm.decode(lm.encode("é")) == "?"  # outside the alphabet: the unknown symbol


def test_windows_target_is_the_next_character(load):
    lm = load("char_language_model")
    ids = np.arange(20)
    x, y = lm.windows(ids, 6)
    assert x.shape == y.shape == (3, 6)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x.ravel(), ids[:18])


def test_bigram_bits(load):
    lm = load("char_language_model")
    # A deterministic alternation is (almost) free for a bigram model ...
    ab = lm.encode("ab" * 500)
    assert lm.bigram_bits(ab, ab, alpha=1e-6) < 1e-3
    # ... and an i.i.d. uniform sequence over 4 symbols costs about 2 bits.
    noise = np.random.default_rng(0).integers(1, 5, 200_000).astype(np.int32)
    assert abs(lm.bigram_bits(noise[:100_000], noise[100_000:]) - 2.0) < 0.01


@pytest.mark.slow  # two model compilations (~15 s each on 2 busy cores)
@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_models_are_causal(load, kind):
    """Logits at step t depend on characters 0..t only (what sampling relies on)."""
    lm = load("char_language_model")
    model = lm.build(kind, True, 0)
    model.eval()
    ids = np.random.default_rng(0).integers(1, lm.VOCAB, (1, 12)).astype(np.int32)
    changed = ids.copy()
    changed[0, 7:] = (changed[0, 7:] % (lm.VOCAB - 1)) + 1
    a, b = model(jnp.asarray(ids)), model(jnp.asarray(changed))
    assert a.shape == (1, 12, lm.VOCAB)
    np.testing.assert_allclose(a[:, :7], b[:, :7], rtol=1e-5, atol=1e-5)
    assert not np.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.slow  # compiles an LSTM step and a sampler (~30 s on 2 busy cores)
def test_char_language_model_quick(load, tmp_path):
    out = tmp_path / "clm"
    load("char_language_model").main(["--quick", "--models", "lstm", "--out", str(out)])
    results = _results(out)
    # On the quick slice the bigram model is far better than uniform (log2 98 = 6.6 bits).
    assert 2.0 < results["bigram_test_bits_per_char"] < 5.0
    (row,) = results["models"]
    assert row["model"] == "lstm" and math.isfinite(row["test_bits_per_char"])
    assert len(row["sample"]) == 100 and row["epochs_run"] == 1
    assert set(row["history"]) >= {"loss", "bits_per_token", "val_loss"}


# --- seq2seq ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["add", "reverse"])
def test_problems_are_right_and_held_out_ones_unseen(load, task):
    s2s = load("seq2seq")
    train, val, test = s2s.make_split(task, 2, (300, 50, 50), seed=0)
    sources = [s2s.decode(s) for s in np.concatenate([train[0], val[0], test[0]])]
    assert len(set(sources)) == 400  # disjoint splits
    for src, tgt in zip(*test):
        a = s2s.decode(src)
        expected = str(sum(map(int, a.split("+")))) if task == "add" else a[::-1]
        assert s2s.decode(tgt) == expected
        assert list(tgt).count(s2s.EOS) == 1


def test_exact_match_ignores_what_follows_the_end(load):
    s2s = load("seq2seq")
    tgt = s2s.targets(["12", "7"], 4)
    predicted = np.array([[4, 5, 2, 9], [10, 2, 2, 2]])
    np.testing.assert_array_equal(s2s.exact_match(predicted, tgt), [True, True])
    predicted[1, 1] = 5  # no end symbol where the target ends
    np.testing.assert_array_equal(s2s.exact_match(predicted, tgt), [True, False])


@pytest.mark.slow  # compiles the decoding loop (~30 s on 2 busy cores)
def test_greedy_feeds_back_its_own_predictions(load):
    """Greedy output y satisfies y = argmax(model(src, shift_right(y))) at every step."""
    s2s = load("seq2seq")
    model = s2s.Seq2Seq(features=8, hidden=8, heads=2, rngs=nnx.Rngs(3))
    model.eval()
    (src, tgt), *_ = s2s.make_split("add", 2, (6,), seed=1)
    src = jnp.asarray(src)
    y = jax.jit(lambda m, s: s2s.greedy(m, s, tgt.shape[1]), static_argnums=())(model, src)
    forced = jnp.argmax(s2s.teacher_forced(model, src, y), axis=-1)
    np.testing.assert_array_equal(y, forced)


@pytest.mark.slow  # compiles the encoder-decoder twice (~16 s on 2 busy cores)
def test_padding_of_the_source_does_not_change_the_output(load):
    """The encoder's lengths and the key mask make the padding invisible."""
    s2s = load("seq2seq")
    model = s2s.Seq2Seq(features=8, hidden=8, heads=2, rngs=nnx.Rngs(0))
    short = jnp.asarray(s2s.encode("12+3", 5)[None])
    long = jnp.asarray(s2s.encode("12+3", 9)[None])
    inputs = jnp.asarray([[s2s.BOS, 4, 5]])
    np.testing.assert_allclose(model(short, inputs), model(long, inputs), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # compiles the encoder-decoder's training step (~60 s on 2 busy cores)
def test_seq2seq_quick_trains_through_loss_fn(load, tmp_path):
    out = tmp_path / "s2s"
    results = load("seq2seq").main(["--quick", "--out", str(out)])
    recorded = _results(out)
    assert recorded["exact_match"] == results["exact_match"]
    assert 0.0 <= results["exact_match"] <= 1.0
    assert 0.1 < results["token_accuracy_teacher_forced"] <= 1.0  # above chance (1/14)
    assert np.isfinite(results["history"]["loss"]).all() and "val_loss" in results["history"]
    assert len(results["examples"]) == 8
