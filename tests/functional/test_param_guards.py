"""Bad parameter dicts for every functional op: clear errors naming the op and the key.

One table of ops (how to build valid parameters and call the op) crossed with the ways
a parameter dict goes wrong: not a mapping (a layer, ``None``, a tuple), required keys
missing, an unknown key, a value that holds no numbers, a list or NumPy value (read as
``x`` is), a wrong rank, a transposed (PyTorch-layout) weight and a bias of the wrong
length. Every error is raised at trace time, before any program runs.
"""

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax.functional as F
import nnjax.nn
from nnjax.errors import ShapeError

B, IN, H = 2, 3, 2


def _ones(*shape: int, shift: float = 0.0) -> jax.Array:
    """Distinct values in ``[shift - 1, shift + 1]``, by NumPy (no program compiled per shape)."""
    values = np.linspace(shift - 1.0, shift + 1.0, int(np.prod(shape)), dtype=np.float32)
    return jnp.asarray(values.reshape(shape))


def _zeros(*shape: int) -> jax.Array:
    return jnp.asarray(np.zeros(shape, np.float32))


def _cell(gates: int, biases: tuple[str, ...]) -> Callable[[], dict]:
    return lambda: {
        "w_x": _ones(IN, gates * H),
        "w_h": _ones(H, gates * H),
        **{b: _zeros(gates * H) for b in biases},
    }


class Op(NamedTuple):
    make: Callable[[], dict]  # valid parameters
    call: Callable[[Any], Any]  # the op on them
    required: tuple[str, ...]
    weight: str | None = None  # a 2-D+ weight to transpose, break and pass as a list
    bias: str | None = None  # a 1-D parameter to give the wrong length


def _attention() -> dict:
    """multi_head_attention_init(key, 4, num_heads=2)'s shapes (no random draws to compile)."""
    projection = lambda: {"kernel": _ones(4, 2, 2), "bias": _ones(2, 2)}
    out = {"kernel": _ones(2, 2, 4), "bias": _ones(4)}
    return {"query": projection(), "key": projection(), "value": projection(), "out": out}


def _block() -> dict:
    """transformer_encoder_block_init(key, 4, num_heads=2, mlp_features=6)'s shapes."""
    norm = lambda: {"scale": _ones(4, shift=2.0), "bias": _ones(4)}
    return {"norm1": norm(), "attention": _attention(), "norm2": norm(),
            "mlp_in": {"kernel": _ones(4, 6), "bias": _ones(6)},
            "mlp_out": {"kernel": _ones(6, 4), "bias": _ones(4)}}  # fmt: skip


_STATE = F.LSTMState(_zeros(B, H), _zeros(B, H))
_BN_STATS = {"mean": _zeros(IN), "var": _ones(IN, shift=2.0)}
_AFFINE = lambda: {"scale": _ones(IN, shift=2.0), "bias": _ones(IN)}

OPS = {
    "dense": Op(lambda: {"kernel": _ones(IN, H), "bias": _ones(H)},
                lambda p: F.dense(p, _ones(B, IN)), ("kernel",), "kernel", "bias"),
    "conv1d": Op(lambda: {"kernel": _ones(3, IN, H), "bias": _ones(H)},
                 lambda p: F.conv1d(p, _ones(B, 5, IN)), ("kernel",), "kernel", "bias"),
    "conv2d": Op(lambda: {"kernel": _ones(2, 2, IN, H), "bias": _ones(H)},
                 lambda p: F.conv2d(p, _ones(B, 4, 4, IN)), ("kernel",), "kernel", "bias"),
    "conv3d": Op(lambda: {"kernel": _ones(2, 2, 2, IN, H), "bias": _ones(H)},
                 lambda p: F.conv3d(p, _ones(1, 3, 3, 3, IN)), ("kernel",), "kernel", "bias"),
    "conv_transpose2d": Op(lambda: {"kernel": _ones(2, 2, IN, H), "bias": _ones(H)},
                           lambda p: F.conv_transpose2d(p, _ones(B, 3, 3, IN)),
                           ("kernel",), "kernel", "bias"),
    "embedding": Op(lambda: {"embedding": _ones(5, H)},
                    lambda p: F.embedding(p, jnp.array([1, 4])), ("embedding",), "embedding"),
    "attend": Op(lambda: {"embedding": _ones(5, IN)},
                 lambda p: F.attend(p, _ones(B, IN)), ("embedding",), "embedding"),
    "prelu": Op(lambda: {"negative_slope": _ones(IN)},
                lambda p: F.prelu(p, _ones(B, IN)), ("negative_slope",), None, "negative_slope"),
    "layer_norm": Op(_AFFINE, lambda p: F.layer_norm(p, _ones(B, IN)), ("scale", "bias"),
                     None, "bias"),
    "rms_norm": Op(lambda: {"scale": _ones(IN)}, lambda p: F.rms_norm(p, _ones(B, IN)),
                   ("scale",)),
    "group_norm": Op(_AFFINE, lambda p: F.group_norm(p, _ones(B, 2, IN), num_groups=1),
                     ("scale", "bias"), None, "bias"),
    "instance_norm": Op(_AFFINE, lambda p: F.instance_norm(p, _ones(B, 2, IN)),
                        ("scale", "bias"), None, "bias"),
    "batch_norm": Op(_AFFINE, lambda p: F.batch_norm(p, _BN_STATS, _ones(B, IN), training=True),
                     ("scale", "bias"), None, "bias"),
    "rnn_cell": Op(_cell(1, ("b",)), lambda p: F.rnn_cell(p, _STATE.h, _ones(B, IN)),
                   ("w_x", "w_h", "b"), "w_x", "b"),
    "lstm_cell": Op(_cell(4, ("b",)), lambda p: F.lstm_cell(p, _STATE, _ones(B, IN)),
                    ("w_x", "w_h", "b"), "w_x", "b"),
    "gru_cell": Op(_cell(3, ("b_x", "b_h")), lambda p: F.gru_cell(p, _STATE.h, _ones(B, IN)),
                   ("w_x", "w_h", "b_x", "b_h"), "w_x", "b_h"),
    # the sequence ops with an initial state (state=None: test_sequence_ops_without_state)
    "rnn": Op(_cell(1, ("b",)), lambda p: F.rnn(F.rnn_cell, p, _ones(B, 4, IN), _STATE.h),
              ("w_x", "w_h", "b"), "w_x", "b"),
    "lstm": Op(_cell(4, ("b",)), lambda p: F.lstm(p, _ones(B, 4, IN), _STATE),
               ("w_x", "w_h", "b"), "w_x", "b"),
    "gru": Op(_cell(3, ("b_x", "b_h")), lambda p: F.gru(p, _ones(B, 4, IN), _STATE.h),
              ("w_x", "w_h", "b_x", "b_h"), "w_x", "b_x"),
    "bidirectional": Op(lambda: {"forward": _cell(4, ("b",))(), "backward": _cell(4, ("b",))()},
                        lambda p: F.bidirectional(F.lstm_cell, p, _ones(B, 4, IN)),
                        ("forward", "backward")),
    "multi_head_attention": Op(_attention, lambda p: F.multi_head_attention(p, _ones(B, 3, 4)),
                               ("query", "key", "value", "out")),
    "transformer_encoder_block": Op(
        _block, lambda p: F.transformer_encoder_block(p, _ones(B, 3, 4)),
        ("norm1", "attention", "norm2", "mlp_in", "mlp_out")),
}  # fmt: skip
#: The ops whose parameters are one flat dict of arrays.
FLAT = [name for name in OPS if name not in ("bidirectional", "multi_head_attention",
                                             "transformer_encoder_block")]  # fmt: skip
SEQUENCE = ("rnn", "lstm", "gru")


def _raises(error, op: str, *words: str):
    """``pytest.raises(error)`` whose message names ``op`` and each of ``words``."""
    pattern = "".join(f"(?=[\\s\\S]*{re.escape(w)})" for w in (f"{op}:", *words))
    return pytest.raises(error, match=pattern)


def _key(name: str) -> str:
    return f"params[{name!r}]"


@pytest.mark.parametrize("name", OPS)
def test_a_layer_in_place_of_params_is_a_type_error_with_the_fix(name):
    layer = nnx.eval_shape(lambda: nnjax.nn.Dense(IN, H, rngs=nnx.Rngs(0)))  # no draws to compile
    with _raises(TypeError, name, "`params` must be a dict of arrays", "Dense", "layer.params()"):
        OPS[name].call(layer)


@pytest.mark.parametrize(("bad", "got"), [(None, "got None"), ((1.0, 2.0), "got tuple of 2")])
@pytest.mark.parametrize("name", OPS)
def test_params_that_are_no_mapping_are_a_type_error(name, bad, got):
    with _raises(TypeError, name, "`params` must be a dict of arrays", got):
        OPS[name].call(bad)


@pytest.mark.parametrize("name", OPS)
def test_missing_keys_are_a_value_error_naming_each_and_the_keys_present(name):
    op = OPS[name]
    params = {k: v for k, v in op.make().items() if k not in op.required}
    with _raises(ValueError, name, *map(repr, op.required), f"(it has {sorted(params)})") as info:
        op.call(params)
    assert isinstance(info.value, KeyError)  # what it was: code catching KeyError still works
    assert not str(info.value).startswith(("'", '"'))  # not quoted, as a KeyError's message


RECURRENT = ("rnn_cell", "lstm_cell", "gru_cell", *SEQUENCE)


@pytest.mark.parametrize("name", [n for n in OPS if n not in RECURRENT])
def test_an_unknown_key_is_a_value_error_naming_it(name):
    with _raises(ValueError, name, "unexpected key 'zzz'", "expected keys"):
        OPS[name].call({**OPS[name].make(), "zzz": _zeros(1)})


@pytest.mark.parametrize("name", RECURRENT)
def test_the_recurrences_ignore_an_unknown_key_with_a_deprecation_warning(name):
    # they ignored unknown keys until 0.2: a warning for one release, then the error
    op = OPS[name]
    params = op.make()
    with pytest.warns(DeprecationWarning, match=rf"{name}: .*unexpected key 'zzz', ignored.*0\.3"):
        got = op.call({**params, "zzz": _zeros(1)})
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(op.call(params)), strict=True):
        np.testing.assert_array_equal(g, e)
    with _raises(ValueError, name, "unexpected key 'w_hh'", "did you mean 'w_h'"):
        misspelt = {("w_hh" if k == "w_h" else k): v for k, v in params.items()}
        op.call(misspelt)  # a misspelling stays an error


def test_bidirectional_warns_for_an_unknown_key_in_a_direction():
    op = OPS["bidirectional"]
    params = op.make()
    with pytest.warns(DeprecationWarning, match="bidirectional: .*unexpected key 'zzz'"):
        op.call({**params, "forward": {**params["forward"], "zzz": _zeros(1)}})


@pytest.mark.parametrize("bad", [None, "abc", np.array([object()])], ids=["None", "str", "obj"])
@pytest.mark.parametrize("name", FLAT)
def test_a_value_that_holds_no_numbers_is_a_type_error_naming_the_key(name, bad):
    op = OPS[name]
    key = op.required[0]
    with _raises(TypeError, name, f"`{_key(key)}` must be"):
        op.call({**op.make(), key: bad})


def _on_host(params: dict) -> dict:
    """``params`` with every other value a nested list, the others NumPy arrays."""
    return {k: np.asarray(v).tolist() if i % 2 == 0 else np.asarray(v)
            for i, (k, v) in enumerate(sorted(params.items()))}  # fmt: skip


@pytest.mark.parametrize("name", FLAT)
def test_lists_and_numpy_arrays_are_read_as_arrays(name):
    # traced (no program compiled): the lists are read as constants, as x is
    op = OPS[name]
    params = op.make()
    got = jax.eval_shape(lambda: op.call(_on_host(params)))
    assert jax.tree.structure(got) == jax.tree.structure(jax.eval_shape(lambda: op.call(params)))


@pytest.mark.parametrize("name", ["dense", "layer_norm", "lstm"])
def test_lists_and_numpy_arrays_give_the_values_of_jax_arrays(name):
    op = OPS[name]
    params = op.make()
    got, expected = op.call(_on_host(params)), op.call(params)
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in FLAT if OPS[n].weight or OPS[n].bias])
def test_a_parameter_of_the_wrong_rank_is_a_shape_error_naming_it(name):
    op = OPS[name]
    key = op.weight or op.bias
    params = op.make()
    bad = jnp.asarray(np.asarray(params[key])[None])
    with _raises(ShapeError, name, f"`{_key(key)}` has shape {bad.shape}", "expected"):
        op.call({**params, key: bad})


#: A transposed weight (PyTorch's layout where it is one) is named, with the fix.
TRANSPOSED = {
    "dense": ("kernel", lambda k: k.T, "weight.T"),
    "conv1d": ("kernel", lambda k: k.transpose(2, 1, 0), "weight.permute(2, 1, 0)"),
    "conv2d": ("kernel", lambda k: k.transpose(3, 2, 0, 1), "weight.permute(2, 3, 1, 0)"),
    "conv3d": ("kernel", lambda k: k.transpose(4, 3, 0, 1, 2), "weight.permute(2, 3, 4, 1, 0)"),
    "conv_transpose2d": ("kernel", lambda k: k.transpose(3, 2, 0, 1), "`x` has shape"),
    "attend": ("embedding", lambda k: k.T, "params['embedding'] has shape (3, 5)"),
    **{cell: ("w_x", lambda k: k.T, "w_x = weight_ih.T")
       for cell in ("rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru")},
}  # fmt: skip


@pytest.mark.parametrize("name", TRANSPOSED)
def test_a_transposed_weight_is_named_with_the_fix(name):
    op = OPS[name]
    key, transpose, fix = TRANSPOSED[name]
    params = op.make()
    bad = jnp.asarray(transpose(np.asarray(params[key])))
    if name == "conv1d":  # PyTorch's bias is (out,) too; the kernel's axis -2 fits x
        params["bias"] = _zeros(bad.shape[0])
    with _raises(ShapeError, name, _key(key), str(bad.shape), fix):
        op.call({**params, key: bad})


@pytest.mark.parametrize("name", ["lstm_cell", "gru_cell", "lstm"])
def test_a_recurrent_weight_in_pytorchs_layout_expects_the_right_shape(name):
    params = OPS[name].make()
    w_h = np.asarray(params["w_h"])
    with _raises(ShapeError, name, f"expected {w_h.shape}", "w_h = weight_hh.T"):
        OPS[name].call({**params, "w_h": jnp.asarray(w_h.T)})


# (prelu's slope sets the channels C of x: a slope of another length names x's shape)
@pytest.mark.parametrize("name", [n for n in FLAT if OPS[n].bias and n != "prelu"])
def test_a_bias_of_the_wrong_length_is_a_shape_error_naming_both_shapes(name):
    op = OPS[name]
    params = op.make()
    good = params[op.bias].shape
    bad = _zeros(good[0] + 1)
    with _raises(ShapeError, name, f"`{_key(op.bias)}` has shape {bad.shape}", f"expected {good}"):
        op.call({**params, op.bias: bad})


@pytest.mark.parametrize("name", SEQUENCE)
def test_sequence_ops_without_state_name_themselves(name):
    # F.rnn/lstm/gru read params before building the zero state from them (sequence.py):
    # the op is named, not its cell (nor a bare KeyError or JAX's TypeError)
    call = (lambda p: F.rnn(F.rnn_cell, p, _ones(B, 4, IN))) if name == "rnn" else (
        lambda p: getattr(F, name)(p, _ones(B, 4, IN)))  # fmt: skip
    with _raises(TypeError, name, "`params` must be a dict of arrays, got None"):
        call(None)
    with _raises(ValueError, name, "no key 'w_h'"):
        call({k: v for k, v in OPS[name].make().items() if k != "w_h"})
    params = OPS[name].make()
    with _raises(ShapeError, name, "`params['w_x']` has shape", "weight_ih.T"):
        call({**params, "w_x": jnp.asarray(np.asarray(params["w_x"]).T)})
    on_host = {k: np.asarray(v).tolist() for k, v in params.items()}
    for got, expected in zip(
        jax.tree.leaves(call(on_host)), jax.tree.leaves(call(params)), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_errors_are_raised_at_trace_time_under_jit():
    params = OPS["lstm_cell"].make()
    step = jax.jit(lambda p, x: F.lstm_cell(p, _STATE, x))
    with _raises(ValueError, "lstm_cell", "unexpected key 'w_hh'", "did you mean 'w_h'"):
        step({("w_hh" if k == "w_h" else k): v for k, v in params.items()}, _ones(B, IN))


def test_attention_values_are_named_by_their_path():
    op = OPS["multi_head_attention"]
    params = op.make()
    with _raises(TypeError, "multi_head_attention", "`params['query']['kernel']` must be"):
        op.call({**params, "query": {**params["query"], "kernel": None}})
    with _raises(ValueError, "multi_head_attention", "`params['out']` has no key 'kernel'"):
        op.call({**params, "out": {"bias": params["out"]["bias"]}})
    rank2 = params["value"]["kernel"].reshape(4, -1)
    with _raises(ShapeError, "multi_head_attention", "`params['value']['kernel']`", "rank 3"):
        op.call({**params, "value": {**params["value"], "kernel": rank2}})


@pytest.mark.parametrize(
    ("part", "change", "path"),
    [
        ("norm2", lambda p: {**p, "scale": _ones(5)}, "params['norm2']['scale']"),
        ("mlp_in", lambda p: {**p, "kernel": p["kernel"].T}, "params['mlp_in']['kernel']"),
        ("mlp_out", lambda p: {**p, "bias": _ones(3)}, "params['mlp_out']['bias']"),
        ("mlp_out", lambda p: {"kernel": p["kernel"][:, :3]}, "params['mlp_out']['kernel']"),
        ("attention", lambda p: {**p, "key": {**p["key"], "kernel": p["key"]["kernel"][:3]}},
         "params['attention']['key']['kernel']"),
        ("norm1", lambda p: {**p, "bias": "0"}, "params['norm1']['bias']"),
        ("mlp_in", lambda p: {**p, "kernal": p["kernel"]}, "params['mlp_in']"),
    ],
    ids=["norm2-scale", "mlp_in-transposed", "mlp_out-bias", "mlp_out-kernel", "key-kernel",
         "norm1-str", "mlp_in-misspelt"],
)  # fmt: skip
def test_transformer_block_names_the_whole_path(part, change, path):
    op = OPS["transformer_encoder_block"]
    params = op.make()
    with (
        _raises(ValueError, "transformer_encoder_block", path)
        if part != "norm1"
        else _raises(TypeError, "transformer_encoder_block", path)
    ):
        op.call({**params, part: change(params[part])})


def test_an_optional_key_set_to_none_counts_as_absent():
    params = {"kernel": _ones(2, 2, IN, H), "bias": None}  # Flax's use_bias=False
    x = _ones(B, 4, 4, IN)
    np.testing.assert_allclose(
        F.conv2d(params, x), F.conv2d({"kernel": params["kernel"]}, x), rtol=1e-6, atol=1e-6
    )
