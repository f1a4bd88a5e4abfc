"""Layer audit against Flax NNX and PyTorch: constructor checks, BatchNorm conventions."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn

torch = pytest.importorskip("torch")

R = nnx.Rngs


# Each layer with a `param_dtype` and a compute `dtype`, built with extra keywords.
DTYPE_LAYERS = [
    ("Dense", lambda **kw: nn.Dense(3, 4, rngs=R(0), **kw)),
    ("Conv1D", lambda **kw: nn.Conv1D(3, 4, 3, rngs=R(0), **kw)),
    ("Conv2D", lambda **kw: nn.Conv2D(3, 4, 3, rngs=R(0), **kw)),
    ("ConvTranspose2D", lambda **kw: nn.ConvTranspose2D(3, 4, 3, rngs=R(0), **kw)),
    ("BatchNorm", lambda **kw: nn.BatchNorm(3, rngs=R(0), **kw)),
    ("LayerNorm", lambda **kw: nn.LayerNorm(3, rngs=R(0), **kw)),
    ("GroupNorm", lambda **kw: nn.GroupNorm(4, num_groups=2, rngs=R(0), **kw)),
    ("RMSNorm", lambda **kw: nn.RMSNorm(3, rngs=R(0), **kw)),
    ("PReLU", lambda **kw: nn.PReLU(3, rngs=R(0), **kw)),
    ("Embedding", lambda **kw: nn.Embedding(10, 4, rngs=R(0), **kw)),
    ("MultiHeadAttention", lambda **kw: nn.MultiHeadAttention(2, 4, rngs=R(0), **kw)),
    ("TransformerEncoderBlock", lambda **kw: nn.TransformerEncoderBlock(4, 2, rngs=R(0), **kw)),
    ("LSTM", lambda **kw: nn.LSTM(3, 4, rngs=R(0), **kw)),
    ("GRU", lambda **kw: nn.GRU(3, 4, rngs=R(0), **kw)),
    ("Bidirectional", lambda **kw: nn.Bidirectional(3, 4, rngs=R(0), **kw)),
]


@pytest.mark.parametrize(("name", "make"), DTYPE_LAYERS, ids=[n for n, _ in DTYPE_LAYERS])
def test_non_floating_dtypes_fail_at_construction_naming_the_layer(name, make):
    # before: `dtype=jnp.int32` (or a typo such as "flaot32") was stored and failed at the
    # first call inside the functional op; an integer `param_dtype` of the norms gave
    # integer parameters and statistics
    with pytest.raises(TypeError, match=rf"{name}: `param_dtype` must be a floating dtype"):
        make(param_dtype=jnp.int32)
    with pytest.raises(TypeError, match=rf"{name}: `dtype` must be a floating dtype.*'flaot32'"):
        make(dtype="flaot32")
    layer = make(param_dtype=jnp.bfloat16, dtype=jnp.bfloat16)  # floating ones still work
    assert layer.dtype == jnp.bfloat16


def test_batch_norm_running_statistics_match_flax_and_convert_from_pytorch():
    rng = np.random.RandomState(0)
    ours = nn.BatchNorm(3, momentum=0.9, rngs=R(0))
    flax_bn = nnx.BatchNorm(3, momentum=0.9, rngs=R(0))
    torch_bn = torch.nn.BatchNorm1d(3, momentum=0.1, eps=1e-5)  # 1 - 0.9
    for _ in range(4):
        x = (rng.randn(8, 3) * 2 + 1).astype(np.float32)
        y, y_flax = ours(x), flax_bn(x)
        y_torch = torch_bn(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(y, y_flax, atol=1e-5)
        np.testing.assert_allclose(y, y_torch, atol=1e-5)  # biased variance in both
    np.testing.assert_allclose(ours.mean[...], flax_bn.mean[...], atol=1e-6)
    np.testing.assert_allclose(ours.var[...], flax_bn.var[...], atol=1e-6)
    np.testing.assert_allclose(ours.mean[...], torch_bn.running_mean.numpy(), atol=1e-6)
    # PyTorch averages the unbiased variance (documented): its running_var is larger
    assert np.all(torch_bn.running_var.numpy() > ours.var[...])
    ours.eval()
    flax_bn.eval()
    x = rng.randn(5, 3).astype(np.float32)
    np.testing.assert_allclose(ours(x), flax_bn(x), atol=1e-5)


def test_batch_norm_momentum_one_freezes_the_statistics_as_in_flax():
    # before: momentum=1.0 was refused ("must be a float in [0, 1)") although
    # F.batch_norm and nnx.BatchNorm take it
    bn = nn.BatchNorm(2, momentum=1.0, rngs=R(0))
    bn(jnp.array([[1.0, 2.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(bn.mean[...], [0.0, 0.0])
    np.testing.assert_array_equal(bn.var[...], [1.0, 1.0])
    for bad in (1.5, -0.1, float("nan"), "0.9", True):
        with pytest.raises(ValueError, match=r"BatchNorm: `momentum` must be a float in \[0, 1\]"):
            nn.BatchNorm(2, momentum=bad, rngs=R(0))


def test_mode_flags_must_be_bools():
    # before: use_running_average="no" (truthy) silently ran BatchNorm in inference mode
    with pytest.raises(TypeError, match="BatchNorm: `use_running_average` must be a Python bool"):
        nn.BatchNorm(2, use_running_average="no", rngs=R(0))
    bn = nn.BatchNorm(2, rngs=R(0))
    with pytest.raises(TypeError, match="BatchNorm: `use_running_average`"):
        bn(jnp.ones((2, 2)), use_running_average="False")
    with pytest.raises(TypeError, match="Dropout: `deterministic` must be a Python bool"):
        nn.Dropout(0.5, deterministic="True", rngs=R(0))
    with pytest.raises(TypeError, match="Dropout: `deterministic`"):
        nn.Dropout(0.5, rngs=R(0))(jnp.ones((2, 2)), deterministic=1)
    with pytest.raises(TypeError, match="MultiHeadAttention: `deterministic`"):
        nn.MultiHeadAttention(2, 4, deterministic="yes", rngs=R(0))


def test_dropout_broadcast_dims_takes_one_int_and_rejects_others():
    # before: broadcast_dims=1 raised "'int' object is not iterable"
    layer = nn.Dropout(0.5, broadcast_dims=1, rngs=R(0))
    assert layer.broadcast_dims == (1,)
    y = layer(jnp.ones((4, 6)))
    assert np.all(y == y[:, :1])  # one mask value per row
    with pytest.raises(TypeError, match=r"Dropout: `broadcast_dims` must be an int or a seq"):
        nn.Dropout(0.5, broadcast_dims=(1.5,), rngs=R(0))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Conv2D(3, 4, 3, stride=0, rngs=R(0)), r"Conv2D: `stride` must be a pos"),
        (lambda: nn.Conv1D(3, 4, 3, stride=(1, 2), rngs=R(0)), r"Conv1D: `stride`"),
        (lambda: nn.Conv3D(3, 4, 3, dilation=-1, rngs=R(0)), r"Conv3D: `dilation`"),
        (lambda: nn.ConvTranspose2D(3, 4, 3, padding="FULL", rngs=R(0)),
         r"ConvTranspose2D: `padding` must be 'SAME', 'VALID'"),
        (lambda: nn.ConvTranspose2D(3, 4, 3, padding=-1, rngs=R(0)), r"ConvTranspose2D: `padding`"),
        (lambda: nn.ConvTranspose1D(3, 4, 3, stride=2, output_padding=2, rngs=R(0)),
         r"ConvTranspose1D: `output_padding`=2 must be smaller than the stride 2"),
        (lambda: nn.ConvTranspose3D(3, 4, 3, stride=0, rngs=R(0)), r"ConvTranspose3D: `stride`"),
        (lambda: nn.MaxPool2D((2, 2, 2)), r"MaxPool2D: `window_shape` must be an int or 2 ints"),
        (lambda: nn.AvgPool1D(2, stride=(1, 1)), r"AvgPool1D: `stride` must be an int or 1 ints"),
        (lambda: nn.MaxPool3D((2, 2)), r"MaxPool3D: `window_shape`"),
        (lambda: nn.Upsample2D((2, 2, 2)), r"Upsample2D: `factor` must be an int or a pair"),
        (lambda: nn.Conv2D(4, 6, 3, feature_group_count=4, rngs=R(0)),
         r"Conv2D: `feature_group_count`=4 must divide both"),  # was named as conv2d_init
        (lambda: nn.ConvTranspose1D(4, 6, 3, feature_group_count=0, rngs=R(0)),
         r"ConvTranspose1D: `feature_group_count` must be a positive int"),
    ],
)  # fmt: skip
def test_bad_call_arguments_fail_at_construction(make, message):
    # before: each was stored and failed (or not) at the first call, inside the op
    with pytest.raises(ValueError, match=message):
        make()


def test_good_call_arguments_still_build_and_run():
    x = jnp.ones((1, 5, 5, 3))
    assert nn.ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1, rngs=R(0))(
        x
    ).shape == (1, 10, 10, 2)
    assert nn.ConvTranspose2D(3, 2, 3, stride=2, padding="SAME", rngs=R(0))(x).shape == (
        1, 10, 10, 2,
    )  # fmt: skip
    assert nn.Conv2D(3, 2, 3, stride=(1, 2), dilation=2, rngs=R(0))(x).shape == (1, 5, 3, 2)
    assert nn.MaxPool2D((2, 1), stride=(1, 1))(x).shape == (1, 4, 5, 3)
    assert nn.AvgPool3D((2, 2, 1))(jnp.ones((1, 4, 4, 4, 3))).shape == (1, 2, 2, 4, 3)


def test_reshape_size_mismatch_is_a_shape_error_naming_the_layer():
    # before: jnp's TypeError "cannot reshape array of shape (2, 5, 3) ..."
    with pytest.raises(nnjax.ShapeError, match=r"Reshape: argument `x` has shape \(2, 5, 3\)"):
        nn.Reshape((3, 4))(jnp.ones((2, 5, 3)))
    assert nn.Reshape((3, 5))(jnp.ones((2, 5, 3))).shape == (2, 3, 5)


def test_recurrent_unknown_keyword_names_the_layer():
    # before: "rnn_cell_init() got an unexpected keyword argument 'forget_bias'"
    with pytest.raises(TypeError, match="GRU: unexpected keyword argument 'forget_bias'"):
        nn.GRU(3, 4, forget_bias=1.0, rngs=R(0))
    with pytest.raises(TypeError, match="LSTM: unexpected keyword argument 'forgetbias'"):
        nn.LSTM(3, 4, forgetbias=1.0, rngs=R(0))
    assert float(nn.LSTM(3, 2, forget_bias=2.0, rngs=R(0)).b[...][2]) == 2.0  # f block


def test_prelu_init_must_be_a_number():
    # before: JAX's "Value 'a' with dtype |S0 is not a valid JAX array type"
    with pytest.raises(TypeError, match="PReLU: `init` must be a real number"):
        nn.PReLU(3, init="a", rngs=R(0))


def test_recurrent_flags_must_be_bools():
    # before: return_sequences="False" (truthy) silently returned every step
    with pytest.raises(TypeError, match="LSTM: `return_sequences` must be a Python bool"):
        nn.LSTM(3, 4, return_sequences="False", rngs=R(0))
    with pytest.raises(TypeError, match="GRU: `reverse`"):
        nn.GRU(3, 4, reverse=1, rngs=R(0))
    with pytest.raises(TypeError, match="Bidirectional: `return_state`"):
        nn.Bidirectional(3, 4, return_state="yes", rngs=R(0))


def test_attention_dropout_stream_error_names_the_layer():
    # before: "Dropout: `rngs` has no 'dropout' ..." from a MultiHeadAttention
    with pytest.raises(ValueError, match="TransformerEncoderBlock: `rngs` has no 'dropout'"):
        nn.TransformerEncoderBlock(4, 2, dropout_rate=0.1, rngs=R(params=0))


def _torch_gru(layer_params, bidirectional):
    """A batch-first torch GRU holding ``layer_params`` (one dict per direction)."""
    gru = torch.nn.GRU(3, 4, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for suffix, p in zip(("", "_reverse"), layer_params):
            for name, key in (("weight_ih", "w_x"), ("weight_hh", "w_h")):
                getattr(gru, f"{name}_l0{suffix}").copy_(torch.tensor(np.asarray(p[key]).T))
            for name, key in (("bias_ih", "b_x"), ("bias_hh", "b_h")):
                getattr(gru, f"{name}_l0{suffix}").copy_(torch.tensor(np.asarray(p[key])))
    return gru


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", "mul"])
def test_bidirectional_merge_modes_and_lengths_match_pytorch(merge):
    rng = np.random.RandomState(1)
    xs = rng.randn(3, 6, 3).astype(np.float32)
    lengths = [6, 2, 4]
    layer = nn.Bidirectional(3, 4, cell="gru", merge=merge, return_state=True, rngs=R(0))
    seq = nn.Bidirectional(3, 4, cell="gru", merge=merge, return_sequences=True, rngs=R(0))
    p = layer.params()
    gru = _torch_gru((p["forward"], p["backward"]), bidirectional=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(xs), lengths, batch_first=True, enforce_sorted=False
    )
    ys_t, h_t = gru(packed)
    ys_t, _ = torch.nn.utils.rnn.pad_packed_sequence(ys_t, batch_first=True, total_length=6)
    ys_t, h_t = ys_t.detach().numpy(), h_t.detach().numpy()
    fwd_t, bwd_t = ys_t[..., :4], ys_t[..., 4:]
    combine = {
        "concat": lambda a, b: np.concatenate([a, b], -1),
        "sum": np.add,
        "mean": lambda a, b: (a + b) / 2,
        "mul": np.multiply,
    }[merge]
    valid = (np.arange(6)[None, :] < np.array(lengths)[:, None])[..., None]
    ys = seq(xs, lengths=jnp.array(lengths))
    np.testing.assert_allclose(np.where(valid, ys, 0), combine(fwd_t, bwd_t), atol=1e-5)
    out, (h_fwd, h_bwd) = layer(xs, lengths=jnp.array(lengths))
    # the last output: forward at each true last step (torch h_n[0]), backward at step 0
    np.testing.assert_allclose(out, combine(h_t[0], h_t[1]), atol=1e-5)
    np.testing.assert_allclose(h_fwd, h_t[0], atol=1e-5)
    np.testing.assert_allclose(h_bwd, h_t[1], atol=1e-5)


def test_recurrent_initial_state_and_reverse_match_pytorch():
    rng = np.random.RandomState(2)
    xs = rng.randn(2, 5, 3).astype(np.float32)
    h0 = rng.randn(2, 4).astype(np.float32)
    layer = nn.GRU(3, 4, return_sequences=True, return_state=True, rngs=R(0))
    gru = _torch_gru((layer.params(),), bidirectional=False)
    ys_t, h_t = gru(torch.tensor(xs), torch.tensor(h0[None]))
    ys, h = layer(xs, jnp.asarray(h0))
    np.testing.assert_allclose(ys, ys_t.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(h, h_t[0].detach().numpy(), atol=1e-5)
    # reverse=True reads the sequence backwards and keeps the outputs in input order
    rev = nn.GRU(3, 4, reverse=True, return_sequences=True, rngs=R(0))
    ys_flip = gru(torch.tensor(xs[:, ::-1].copy()))[0].detach().numpy()[:, ::-1]
    np.testing.assert_allclose(rev(xs), ys_flip, atol=1e-5)
    last = nn.GRU(3, 4, reverse=True, rngs=R(0))(xs)  # the last step processed: step 0
    np.testing.assert_allclose(last, ys_flip[:, 0], atol=1e-5)


def test_batch_norm_statistics_stay_float32_with_bfloat16_parameters():
    # before: param_dtype=bfloat16 held the running statistics in bfloat16, where an
    # update (1 - momentum) * (batch - old) below half an ulp is lost: with momentum
    # 0.999 the running mean stalled at 0.68 instead of 0.52 after 300 steps
    ours = nn.BatchNorm(3, param_dtype=jnp.bfloat16, momentum=0.999, rngs=R(0))
    flax_bn = nnx.BatchNorm(3, param_dtype=jnp.bfloat16, momentum=0.999, rngs=R(0))
    assert ours.scale[...].dtype == jnp.bfloat16
    assert ours.mean[...].dtype == ours.var[...].dtype == flax_bn.mean[...].dtype == jnp.float32
    x = jnp.full((4, 3), 2.0)
    for _ in range(300):
        ours(x)
        flax_bn(x)
    expected = 2.0 * (1 - 0.999**300)
    np.testing.assert_allclose(ours.mean[...], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.mean[...], flax_bn.mean[...], rtol=1e-5, atol=1e-6)
