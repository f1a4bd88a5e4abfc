"""The measured choices of nnjax.train.compiled: updates per dispatch, donation, matmuls."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import _hardware, nn, train
from nnjax.functional import _conv_compiler
from nnjax.train import compiled, dispatch_choices, eval_blocks, sharding
from nnjax.train.data import Batch
from nnjax.train.state import TrainState
from nnjax.train.step import split_model

_YNN_CONVS = (
    f"--{_conv_compiler.YNN_FUSION_OPTION}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,"
    "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION,LIBRARY_FUSION_TYPE_REDUCE"
)


def _graphdef(model):
    return nnx.graphdef(model)


@pytest.mark.slow  # among the default run's slowest (4-10 s): CI's slow step runs it
def test_every_model_takes_eight_steps_per_dispatch_on_every_backend():
    rngs = nnx.Rngs(0)
    cnn = nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=rngs)
    conv = nnx.Conv(1, 2, (3, 3), rngs=rngs)
    lstm = nn.SequenceClassifier(3, 4, 2, rngs=rngs)
    block = nn.TransformerEncoderBlock(8, 2, rngs=rngs)
    mlp = nn.MLP(2, (4,), 1, rngs=rngs)
    assert compiled.DEFAULT_STEPS_PER_DISPATCH == 8
    for model in (cnn, conv, lstm, block, mlp):
        for backend in ("cpu", "gpu", "tpu", None):
            assert compiled.steps_per_dispatch_for(model, backend) == 8


@pytest.mark.parametrize("ynn_convs", [False, True])
def test_fit_of_a_conv_model_runs_eight_updates_per_dispatch(ynn_convs, monkeypatch):
    """8 a dispatch; 1 where XLA_FLAGS keep YNNPACK convolutions (a rolled loop: 64x slower)."""
    calls = []
    real = compiled.compiled_train

    def spy(*args, **kwargs):
        fn = real(*args, **kwargs)

        def counted(treedef, leaves, *rest):
            calls.append(1)
            return fn(treedef, leaves, *rest)

        return counted

    monkeypatch.setattr(compiled, "compiled_train", spy)
    if ynn_convs:
        monkeypatch.setenv("XLA_FLAGS", _YNN_CONVS)
    model = nn.CNN((6, 6, 1), 2, conv_features=(2,), dense=(), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).random((64, 6, 6, 1), np.float32)
    train.fit(model, (x, np.zeros(64, np.int32)), loss="cross_entropy", batch_size=4, epochs=1)
    assert len(calls) == (16 if ynn_convs else 2)  # 16 updates: 8 per dispatch, or 1


def test_donation_off_on_cpu_for_conv_and_recurrent_models_only():
    rngs = nnx.Rngs(0)
    mlp = _graphdef(nn.MLP(2, (4,), 1, rngs=rngs))
    cnn = _graphdef(nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=rngs))
    lstm = _graphdef(nn.SequenceClassifier(3, 4, 2, rngs=rngs))
    assert compiled.donate_for(mlp, "cpu")
    assert not compiled.donate_for(cnn, "cpu") and not compiled.donate_for(lstm, "cpu")
    assert compiled.donate_for(cnn, "gpu") and compiled.donate_for(lstm, "tpu")


@pytest.mark.parametrize("avx512", [False, True])
def test_eigen_dots_on_cpu_for_lstm_models_and_gru_models_with_avx512(monkeypatch, avx512):
    monkeypatch.setattr(_hardware, "avx512", lambda: avx512)
    rngs = nnx.Rngs(0)
    lstm = _graphdef(nn.SequenceClassifier(3, 4, 2, rngs=rngs))
    gru = _graphdef(nn.SequenceClassifier(3, 4, 2, cell="gru", rngs=rngs))
    mlp = _graphdef(nn.MLP(2, (4,), 1, rngs=rngs))
    cnn = _graphdef(nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=rngs))
    assert compiled.eigen_dots_for(lstm, "cpu")
    assert compiled.eigen_dots_for(gru, "cpu") is avx512
    assert not any(compiled.eigen_dots_for(g, "cpu") for g in (mlp, cnn))
    assert not compiled.eigen_dots_for(lstm, "gpu") and not compiled.eigen_dots_for(gru, "tpu")
    # forward-only dispatches: recurrent models on Eigen's matmuls where there is AVX-512
    inference = dispatch_choices.inference_eigen_dots_for
    assert inference(gru, "cpu") is avx512 and not inference(gru, "gpu")
    assert inference(lstm, "cpu") is avx512 and not inference(lstm, "tpu")
    assert not any(inference(g, "cpu") for g in (mlp, cnn))


def _lowered(model, x, y):
    """``fit``'s train dispatch for ``model``, lowered for one batch ``(x, y)``."""
    graphdef, params, rest = split_model(model)
    tx = optax.sgd(0.1)
    mesh = sharding.make_mesh(jax.devices()[:1])
    fn = compiled.compiled_train(graphdef, "cross_entropy", tx, (), 1, mesh, False)
    ones = jnp.ones((1, len(y)))
    leaves, treedef = jax.tree.flatten(TrainState(params, tx.init(params), rest))
    return fn.lower(treedef, leaves, Batch(x[None], y[None], ones, ones), 1)


def _ynn_matmuls(model, x, y):
    """How many matmuls of ``fit``'s compiled step for ``model`` run on YNNPACK."""
    hlo = _lowered(model, x, y).compile().as_text()
    return sum("__ynn_fusion" in line and "dot_general" in line for line in hlo.splitlines())


@pytest.mark.parametrize("avx512", [False, True])
@pytest.mark.slow
def test_lstm_and_avx512_gru_steps_compile_their_matmuls_for_eigen(monkeypatch, avx512):
    monkeypatch.setattr(_hardware, "avx512", lambda: avx512)
    rngs = nnx.Rngs(0)
    # sizes of their own per case: compiled_train memoises per graphdef
    hidden = 7 + avx512
    x, y = jnp.ones((4, 5, 3)), jnp.zeros(4, jnp.int32)
    lstm = nn.SequenceClassifier(3, hidden, 5, rngs=rngs)
    gru = nn.SequenceClassifier(3, hidden, 5, cell="gru", rngs=rngs)
    on_cpu = jax.default_backend() == "cpu" and bool(_conv_compiler.compiler_options())
    assert _ynn_matmuls(lstm, x, y) == 0
    # the default elsewhere: YNNPACK where it exists
    assert (_ynn_matmuls(gru, x, y) > 0) == (on_cpu and not avx512)


@pytest.mark.parametrize("native", [False, True])
def test_bfloat16_cnn_step_rounds_with_integers_on_the_cpu(monkeypatch, native):
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: native)
    # a model per case: compiled_train memoises per graphdef, JAX its trace per function
    features = (3,) if native else (4,)
    cnn = nn.CNN((8, 8, 2), 2, conv_features=features, dense=(), dtype=jnp.bfloat16,
                 rngs=nnx.Rngs(0))  # fmt: skip
    text = _lowered(cnn, jnp.ones((4, 8, 8, 2)), jnp.zeros(4, jnp.int32)).as_text()
    library = jax.default_backend() == "cpu" and bool(_conv_compiler.compiler_options())
    # nnjax.functional._bfloat16: roundings by integer operations, natively or emulated
    assert ("shift_right_logical" in text) == library


def test_conv_models_take_one_step_per_dispatch_where_xla_flags_keep_ynnpack_convs(monkeypatch):
    rngs = nnx.Rngs(0)
    cnn = nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=rngs)
    conv = nnx.Conv(1, 2, (3, 3), rngs=rngs)
    mlp = nn.MLP(2, (4,), 1, rngs=rngs)
    monkeypatch.setenv("XLA_FLAGS", _YNN_CONVS)
    assert [compiled.steps_per_dispatch_for(m, "cpu") for m in (cnn, conv, mlp)] == [1, 1, 8]
    assert compiled.steps_per_dispatch_for(cnn, "gpu") == 8
    without_convs = f"--{_conv_compiler.YNN_FUSION_OPTION}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    monkeypatch.setenv("XLA_FLAGS", without_convs)
    assert compiled.steps_per_dispatch_for(cnn, "cpu") == 8


@pytest.mark.parametrize("amx", [False, True])
def test_bfloat16_recurrent_steps_take_ynnpack_matmuls_with_amx(monkeypatch, amx):
    monkeypatch.setattr(_hardware, "amx_bfloat16", lambda: amx)
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)
    rngs = nnx.Rngs(0)
    lstm = _graphdef(nn.SequenceClassifier(3, 4, 2, rngs=rngs))
    gru = _graphdef(nn.SequenceClassifier(3, 4, 2, cell="gru", rngs=rngs))
    choose = compiled.eigen_dots_for
    # YNNPACK's matmuls (bfloat16 operands on AMX) where AMX has them, Eigen's otherwise
    assert choose(lstm, "cpu", "bfloat16") is not amx
    assert choose(lstm, "cpu", None) and choose(lstm, "cpu")
    # the GRU too; without AMX as before
    assert choose(gru, "cpu", "bfloat16") is (choose(gru, "cpu") and not amx)
    assert not choose(lstm, "gpu", "bfloat16")


@pytest.mark.parametrize("amx", [False, True])
def test_forward_only_dispatches_choose_the_library_as_the_train_step(monkeypatch, amx):
    monkeypatch.setattr(_hardware, "avx512", lambda: True)
    monkeypatch.setattr(_hardware, "amx_bfloat16", lambda: amx)
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)
    rngs = nnx.Rngs(0)
    lstm = _graphdef(nn.SequenceClassifier(3, 4, 2, rngs=rngs))
    gru = _graphdef(nn.SequenceClassifier(3, 4, 2, cell="gru", rngs=rngs))
    inference = dispatch_choices.inference_eigen_dots_for
    for graphdef in (lstm, gru):
        assert inference(graphdef, "cpu") and inference(graphdef, "cpu", None)
        # bfloat16 operands on AMX's tiles need YNNPACK's matmuls, in evaluation too
        assert inference(graphdef, "cpu", "bfloat16") is not amx
    monkeypatch.setattr(_hardware, "avx512", lambda: False)
    assert not inference(lstm, "cpu") and not inference(gru, "cpu", "bfloat16")


def _precisions_seen(monkeypatch, module, name, real):
    """The ``precision`` of every call of ``module.name``, which still answers as ``real``."""
    seen = []

    def spy(graphdef, backend=None, precision=None):
        seen.append(precision)
        return real(graphdef, backend, precision)

    monkeypatch.setattr(module, name, spy)
    return seen


def _sequences(n, hidden):
    """An LSTM classifier of ``hidden`` units (a size of its own: memos) and ``n`` sequences."""
    model = nn.SequenceClassifier(3, hidden, 2, rngs=nnx.Rngs(0))
    return model, np.random.default_rng(0).random((n, 4, 3), np.float32), np.zeros(n, np.int32)


@pytest.mark.filterwarnings("ignore:precision='float16' on the CPU:UserWarning")
def test_evaluation_chooses_the_matmul_library_by_precision(monkeypatch):
    real = dispatch_choices.inference_eigen_dots_for
    seen = _precisions_seen(monkeypatch, eval_blocks, "inference_eigen_dots_for", real)
    model, x, y = _sequences(8, 6)
    train.evaluate(model, (x, y), loss="cross_entropy", batch_size=4, precision="float16")
    train.predict(model, x, batch_size=4)
    assert seen == ["float16", None]


def test_fit_chooses_the_matmul_library_by_precision(monkeypatch):
    monkeypatch.setattr(_hardware, "amx_bfloat16", lambda: True)
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)
    real = dispatch_choices.eigen_dots_for
    seen = _precisions_seen(monkeypatch, compiled, "eigen_dots_for", real)
    model, x, y = _sequences(16, 5)
    train.fit(model, (x, y), loss="cross_entropy", batch_size=8, epochs=1, precision="bfloat16")
    assert seen == ["bfloat16"]
