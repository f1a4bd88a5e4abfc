"""How the sweep dispatch is compiled: as ``fit``'s where members run one at a time."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import _hardware, nn
from nnjax.functional import _conv_compiler
from nnjax.train import sweep_step
from nnjax.train.data import Batch
from nnjax.train.step import split_model

M = 2
OPTIONS = (("loss_fn", None), ("precision", None))
ON_CPU = jax.default_backend() == "cpu" and bool(_conv_compiler.compiler_options())


def _lowered(model_fn, per_step, x, y):
    """The sweep dispatch of ``M`` members of ``model_fn`` (mode "shared"), lowered."""
    splits = [split_model(model_fn(nnx.Rngs(s))) for s in range(M)]
    graphdef = splits[0][0]
    params, rest = (sweep_step.stack([s[i] for s in splits]) for i in (1, 2))
    names = ("learning_rate",)
    opt_state = sweep_step.init_opt_states(optax.sgd, params, {"learning_rate": [0.1] * M})
    state = sweep_step.SweepState(params, opt_state, rest, jnp.ones(M))
    fn = sweep_step.compiled_sweep_train(
        graphdef, "cross_entropy", optax.sgd, names, (), 1, "shared", (), per_step
    )
    ones = jnp.ones((1, len(y)))
    leaves, treedef = jax.tree.flatten(state)
    return fn.lower(treedef, leaves, Batch(x[None], y[None], ones, ones), 1)


def _ynn_ops(lowered, op):
    text = lowered.compile().as_text()
    return sum("__ynn_fusion" in line and op in line for line in text.splitlines())


def test_library_compiled_only_for_members_one_at_a_time():
    assert sweep_step.library_compiled(1)
    assert not any(sweep_step.library_compiled(k) for k in (None, 2, 8))


@pytest.mark.parametrize(
    "per_step",
    [pytest.param(1, marks=pytest.mark.slow), None, pytest.param(2, marks=pytest.mark.slow)],
)
def test_dispatch_compiled_as_fits_only_for_members_one_at_a_time(monkeypatch, per_step):
    calls = []

    def spy(fn, *, eigen_dots, **kw):
        calls.append(eigen_dots)
        return jax.jit(fn, **kw)

    monkeypatch.setattr(sweep_step._conv_compiler, "jit", spy)
    # a size of its own per case: compiled_sweep_train memoises per graphdef
    hidden = {1: 4, None: 5, 2: 6}[per_step]

    def model_fn(rngs):
        return nn.SequenceClassifier(3, hidden, 5, rngs=rngs)

    x, y = jnp.ones((4, 5, 3)), jnp.zeros(4, jnp.int32)
    _lowered(model_fn, per_step, x, y)
    graphdef = split_model(model_fn(nnx.Rngs(0)))[0]
    expected = [sweep_step.step_eigen_dots(graphdef, ())] if per_step == 1 else []
    assert calls == expected


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_members_one_at_a_time_choose_the_matmul_library_by_precision_as_fit(monkeypatch):
    """A bfloat16 LSTM's members take YNNPACK's matmuls where AMX has bfloat16 tiles."""
    monkeypatch.setattr(_hardware, "amx_bfloat16", lambda: True)
    monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: True)
    calls = []

    def spy(fn, *, eigen_dots, **kw):
        calls.append(eigen_dots)
        return jax.jit(fn, **kw)

    monkeypatch.setattr(sweep_step._conv_compiler, "jit", spy)
    graphdef = split_model(nn.SequenceClassifier(3, 9, 5, rngs=nnx.Rngs(0)))[0]
    for precision in ("bfloat16", None):
        options = (("loss_fn", None), ("precision", precision))
        sweep_step.compiled_sweep_train(
            graphdef, "cross_entropy", optax.sgd, ("learning_rate",), (), 1, "shared", options, 1
        )
    assert calls == [False, True]


@pytest.mark.parametrize("per_step", [pytest.param(1, marks=pytest.mark.slow), None])
def test_validation_compiled_as_evaluate_only_for_members_one_at_a_time(monkeypatch, per_step):
    calls = []
    real = sweep_step.eval_blocks.library_jit

    def spy(graphdef, precision=None):
        calls.append(graphdef)
        return real(graphdef, precision)

    monkeypatch.setattr(sweep_step.eval_blocks, "library_jit", spy)
    hidden = {1: 7, None: 8}[per_step]  # a size of its own: _compiled_eval memoises
    model = nn.SequenceClassifier(3, hidden, 5, rngs=nnx.Rngs(0))
    graphdef = split_model(model, training=False)[0]
    mesh = jax.sharding.Mesh(jax.devices()[:1], ("data",))
    sweep_step._compiled_eval(graphdef, "cross_entropy", (), OPTIONS, per_step, 2, mesh, False)
    assert calls == ([graphdef] if per_step == 1 else [])


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.skipif(not ON_CPU, reason="XLA:CPU's YNNPACK option only")
def test_cnn_members_one_at_a_time_convolve_on_eigen_as_fit():
    def model_fn(rngs):
        return nn.CNN((14, 14, 32), 3, conv_features=(64,), dense=(), rngs=rngs)

    x, y = jnp.ones((4, 14, 14, 32)), jnp.zeros(4, jnp.int32)
    lowered = _lowered(model_fn, 1, x, y)
    assert _ynn_ops(lowered, "conv_general_dilated") == 0
    text = lowered.compile().as_text()
    assert " convolution(" in text  # XLA's convolution, on Eigen


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
@pytest.mark.skipif(not ON_CPU, reason="XLA:CPU's YNNPACK option only")
def test_lstm_members_one_at_a_time_take_fits_matmul_library():
    def model_fn(rngs):
        return nn.SequenceClassifier(3, 6, 5, rngs=rngs)

    x, y = jnp.ones((4, 5, 3)), jnp.zeros(4, jnp.int32)
    # an LSTM's matmuls go to Eigen in fit's programs (eigen_dots_for), so here too
    assert _ynn_ops(_lowered(model_fn, 1, x, y), "dot_general") == 0
    assert _ynn_ops(_lowered(model_fn, None, x, y), "dot_general") > 0


@pytest.mark.slow
def test_one_member_sweep_equals_fit_with_a_cnn():
    from nnjax.train import fit, sweep

    rng = np.random.default_rng(0)
    x = rng.random((24, 6, 6, 1), dtype=np.float32)
    y = rng.integers(0, 3, 24)

    def model_fn(rngs):
        return nn.CNN((6, 6, 1), 3, conv_features=(5,), dense=(), rngs=rngs)

    kw = {"loss": "sparse_categorical_crossentropy", "epochs": 2, "batch_size": 8}
    result = sweep(model_fn, (x, y), seeds=[0], **kw)
    model = model_fn(nnx.Rngs(0))
    history = fit(model, (x, y), seed=0, **kw)
    # the same program as fit's (Eigen convolutions); plain jit's differed by 2e-4 here
    losses = result.history["loss"][0]
    np.testing.assert_allclose(losses, history.history["loss"], rtol=1e-6, atol=1e-7)
    member = nnx.state(result.member(0), nnx.Param)
    for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(nnx.state(model, nnx.Param))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _stacked(model_fn, m=2):
    splits = [split_model(model_fn(nnx.Rngs(s))) for s in range(m)]
    return splits[0][0], sweep_step.stack([s[1] for s in splits])


@pytest.mark.parametrize(
    ("model_fn", "cpu"),
    [
        (lambda r: nn.SequenceClassifier(16, 48, 10, rngs=r), 1),  # 13k, recurrent
        (lambda r: nn.SequenceClassifier(16, 16, 10, rngs=r), None),  # 2.1k
        (lambda r: nn.CNN((28, 28, 1), 10, conv_features=(8, 16), dense=(32,), rngs=r), 1),
        (lambda r: nn.MLP(64, (64, 64), 10, rngs=r), None),  # 13k, dense: the 100k rule
        (lambda r: nn.MLP(784, (128,), 10, rngs=r), 1),  # 102k
    ],
    ids=["lstm-13k", "lstm-2k", "cnn-27k", "mlp-13k", "mlp-102k"],
)
@pytest.mark.slow
def test_auto_runs_conv_and_recurrent_members_over_10k_one_at_a_time(model_fn, cpu):
    graphdef, params = _stacked(model_fn)
    assert sweep_step.auto_per_step(params, "cpu", graphdef) == cpu
    assert sweep_step.auto_per_step(params, "gpu", graphdef) is None


@pytest.mark.slow
def test_auto_in_a_sweep_of_cnn_members_compiles_them_as_fit(monkeypatch):
    from nnjax.train import sweep

    calls = []

    def spy(fn, *, eigen_dots, **kw):
        calls.append(eigen_dots)
        return jax.jit(fn, **kw)

    monkeypatch.setattr(sweep_step._conv_compiler, "jit", spy)
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 12, 12, 1), dtype=np.float32), rng.integers(0, 3, 16)

    def model_fn(rngs):  # 12x12 -> 6x6 x 16 -> dense 64: 37k parameters
        return nn.CNN((12, 12, 1), 3, conv_features=(16,), dense=(64,), rngs=rngs)

    sweep(model_fn, (x, y), loss="sparse_categorical_crossentropy", seeds=[0, 1], batch_size=8)
    # one at a time on the CPU (37k > 10k), so compiled as fit's step; vmapped elsewhere
    assert calls == ([False] if jax.default_backend() == "cpu" else [])


def test_auto_validation_loops_conv_members_on_the_cpu_only():
    cnn, _ = _stacked(lambda r: nn.CNN((8, 8, 1), 2, conv_features=(4,), rngs=r))
    lstm, _ = _stacked(lambda r: nn.SequenceClassifier(3, 4, 2, rngs=r))
    mlp, _ = _stacked(lambda r: nn.MLP(2, (4,), 1, rngs=r))
    assert sweep_step.auto_eval_per_step("cpu", cnn) == 1
    assert sweep_step.auto_eval_per_step("cpu", lstm) is None
    assert sweep_step.auto_eval_per_step("cpu", mlp) is None
    assert sweep_step.auto_eval_per_step("gpu", cnn) is None


@pytest.mark.parametrize("per_step", [1, 2])
def test_validation_of_looped_members_equals_vmapped(per_step):
    from nnjax.train import step
    from nnjax.train.data import ArraySource

    def model_fn(rngs):
        return nn.CNN((6, 6, 1), 3, conv_features=(4,), dense=(), rngs=rngs)

    models = [model_fn(nnx.Rngs(s)) for s in range(3)]
    graphdef = step.graphdef_for(models[0], training=False)
    splits = [step.split_model(m, training=False) for m in models]
    params, rest = (sweep_step.stack([s[i] for s in splits]) for i in (1, 2))
    state = sweep_step.SweepState(params, (), rest, np.ones(3, np.float32))
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 20)
    source = ArraySource(x, y, batch_size=8)
    args = (
        "sparse_categorical_crossentropy",
        ("accuracy",),
        (("precision", None), ("loss_fn", None)),
    )
    looped = sweep_step.make_validate(graphdef, source, *args, per_step=per_step)(state)
    vmapped = sweep_step.make_validate(graphdef, source, *args, per_step=None)(state)
    assert sorted(looped) == sorted(vmapped) == ["accuracy", "loss"]
    for name in looped:
        np.testing.assert_allclose(looped[name], vmapped[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cnn_member_predictions_loop_over_members_and_equal_each_member():
    from nnjax.train import ensemble_predict, member_predictions, sweep

    rng = np.random.default_rng(0)
    x, y = rng.random((16, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 16)

    def model_fn(rngs):
        return nn.CNN((6, 6, 1), 3, conv_features=(4,), dense=(), rngs=rngs)

    kw = {"loss": "sparse_categorical_crossentropy", "batch_size": 8}
    result = sweep(model_fn, (x, y), seeds=[0, 1, 2], **kw)
    outs = np.asarray(member_predictions(result, x))
    for i in range(3):
        member = result.member(i)
        member.eval()
        np.testing.assert_allclose(outs[i], member(x), rtol=1e-5, atol=1e-6)
    mean = np.asarray(ensemble_predict(result, x))
    np.testing.assert_allclose(mean, outs.mean(0), rtol=1e-5, atol=1e-6)
