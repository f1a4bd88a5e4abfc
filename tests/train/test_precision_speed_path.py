"""``precision="bfloat16"`` follows the hardware (``objective.compute_dtype``).

Native bfloat16: on GPUs and TPUs the model runs on bfloat16 copies; on AMX or
AVX512-BF16 CPUs it stays float32 and its dense matmuls round their operands to
bfloat16; either way its results are close to float32's at a bfloat16 tolerance.
Elsewhere: the float32 step itself (the same numbers, no bfloat16 work in the program)
and a warning naming the CPU. The hardware is faked with a monkeypatched
``_hardware.native_bfloat16``.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import nnjax.train as T
from nnjax import _hardware
from nnjax.nn import MLP
from nnjax.train.objective import compute_dtype, rounds_matmul_operands
from nnjax.train.step import make_eval_step, make_train_step, split_model
from tests.train._data import blobs, leaves

BF16 = jnp.bfloat16
NOTE = (  # either reason (this machine's flags): no bfloat16, or Intel's AVX512-BF16 alone
    r"precision='bfloat16' computes in float32 on this CPU "
    r"\(Test CPU 9000: (no amx_bf16|avx512_bf16 without amx_bf16)"
)
LR = 0.1


@pytest.fixture
def native(monkeypatch):
    """``native(flag)`` fakes whether the hardware multiplies bfloat16 natively."""

    def fake(flag: bool) -> None:
        monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None: flag)
        monkeypatch.setattr(_hardware, "cpu_model", lambda cpuinfo=None: "Test CPU 9000")

    return fake


@pytest.fixture
def problem():
    x, y = blobs(n=24, d=8, classes=4)
    graphdef, params, rest = split_model(MLP(8, (16,), 4, rngs=nnx.Rngs(0)))
    return graphdef, params, rest, jnp.asarray(x), jnp.asarray(y)


def _steps(problem, precision, n=2):
    """``n`` jitted SGD steps: (losses, params, traces, the lowered HLO text)."""
    graphdef, params, rest, x, y = problem
    tx = optax.sgd(LR)
    traces = []
    step = make_train_step(graphdef, "cross_entropy", tx, precision=precision)
    jitted = jax.jit(lambda *a: traces.append(1) or step(*a))
    state = (params, tx.init(params), rest)
    text = jitted.lower(*state, x, y).as_text()
    losses = []
    for _ in range(n):
        *state, logs = jitted(*state, x, y)
        losses.append(float(logs["loss"]))
    return np.array(losses), state[0], len(traces), text


def _reference_loss(params, x, y):
    """An independent float32 MLP (ReLU) and mean softmax cross-entropy."""
    layers = nnx.to_pure_dict(params)["layers"]
    h = jnp.maximum(x @ layers[0]["kernel"] + layers[0]["bias"][None, :], 0.0)
    logits = h @ layers[1]["kernel"] + layers[1]["bias"][None, :]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def test_compute_dtype_follows_native_bfloat16(native):
    native(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compute_dtype("bfloat16", backend="gpu") == BF16
        assert not rounds_matmul_operands("bfloat16", backend="gpu")
        # a CPU: a float32 model whose matmuls round their operands to bfloat16
        assert compute_dtype("bfloat16", backend="cpu") is None
        assert rounds_matmul_operands("bfloat16", backend="cpu")
        assert compute_dtype("float16", backend="gpu") == jnp.float16
        assert compute_dtype(None) is None
        assert not rounds_matmul_operands(None) and not rounds_matmul_operands("float16")
    native(False)
    with pytest.warns(UserWarning, match=NOTE):
        assert compute_dtype("bfloat16", backend="cpu") is None
    assert not rounds_matmul_operands("bfloat16", backend="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compute_dtype("float16", backend="gpu") == jnp.float16  # not bfloat16: as given


def test_float16_on_the_cpu_warns_that_it_is_emulated():
    with pytest.warns(UserWarning, match="float16' on the CPU: XLA:CPU emulates"):
        assert compute_dtype("float16", backend="cpu") == jnp.float16  # computed as asked
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compute_dtype("float16", backend="tpu") == jnp.float16


def test_emulated_bfloat16_step_is_the_float32_step(native, problem):
    native(False)
    with pytest.warns(UserWarning, match=NOTE):
        losses, params, traces, text = _steps(problem, "bfloat16")
    assert "bf16" not in text  # no bfloat16 cast or op in the program
    ref_losses, ref_params, _, _ = _steps(problem, None)
    np.testing.assert_array_equal(losses, ref_losses)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(a, b)
    assert traces == 1  # the second call reuses the compiled step
    _, start, _, x, y = problem
    np.testing.assert_allclose(losses[0], _reference_loss(start, x, y), rtol=1e-6, atol=1e-6)


def test_native_bfloat16_step_is_close_to_float32(native, problem):
    native(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses, params, traces, text = _steps(problem, "bfloat16", n=1)
    assert "bf16" in text and traces == 1
    _, start, _, x, y = problem
    # an independent float32 reference: one SGD step on the same loss
    value, grads = jax.jit(jax.value_and_grad(_reference_loss))(start, x, y)
    np.testing.assert_allclose(losses[0], value, rtol=2e-2, atol=1e-2)
    expected = jax.tree.map(lambda p, g: p - LR * g, start, grads)
    for new, old, ref in zip(*map(jax.tree.leaves, (params, start, expected))):
        assert new.dtype == jnp.float32
        update, ref_update = np.asarray(new - old), np.asarray(ref - old)
        scale = np.abs(ref_update).max()
        np.testing.assert_allclose(update, ref_update, rtol=5e-2, atol=2e-2 * scale)
        assert not np.array_equal(update, ref_update)  # bfloat16 rounding did happen


@pytest.mark.slow
def test_eval_step_follows_the_hardware(native, problem):
    graphdef, params, rest, x, y = problem
    batch = T.Batch(x, y, jnp.ones(len(y)), jnp.ones(len(y)))
    reference = make_eval_step(graphdef, "cross_entropy", "accuracy")(params, rest, batch)
    native(False)
    with pytest.warns(UserWarning, match=NOTE):
        step = make_eval_step(graphdef, "cross_entropy", "accuracy", precision="bfloat16")
    for a, b in zip(jax.tree.leaves(step(params, rest, batch)), jax.tree.leaves(reference)):
        np.testing.assert_array_equal(a, b)
    native(True)
    stats = make_eval_step(graphdef, "cross_entropy", "accuracy", precision="bfloat16")(
        params, rest, batch
    )
    np.testing.assert_allclose(stats["loss"]["sum"], reference["loss"]["sum"], rtol=2e-2, atol=1e-3)


@pytest.mark.slow  # two fits: 12 s on the shared 2-core CPU (load 9); the steps are tested above
@pytest.mark.skipif(_hardware.native_bfloat16(), reason="this hardware has native bfloat16")
def test_fit_on_emulated_hardware_trains_as_float32_and_says_so():
    x, y = blobs(n=40, d=8, classes=4)
    kw = dict(loss="cross_entropy", epochs=1, batch_size=16, verbose=0, devices=jax.devices()[:1])
    half, full = (MLP(8, (16,), 4, rngs=nnx.Rngs(0)) for _ in range(2))
    with pytest.warns(UserWarning, match="computes in float32 on this CPU"):
        T.fit(half, (x, y), precision="bfloat16", **kw)
    T.fit(full, (x, y), **kw)
    for a, b in zip(leaves(half), leaves(full)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's form of the precision")
def test_native_cpu_precision_keeps_float32_activations(native, problem):
    """On a CPU with native bfloat16 the model runs in float32; its matmuls round operands."""
    from nnjax.functional import _bfloat16_dot
    from nnjax.train.objective import as_batch, make_objective

    native(True)
    graphdef, params, rest, x, y = problem
    seen = {}

    def loss_fn(model, batch):
        logits = model(batch.x)
        seen.update(dtype=logits.dtype, rounding=_bfloat16_dot.rounding_operands())
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch.y).mean()

    value = jax.jit(make_objective(graphdef, loss_fn=loss_fn, precision="bfloat16"))(
        params, rest, as_batch(x, y)
    )[0]
    assert seen == {"dtype": jnp.float32, "rounding": True}
    assert not _bfloat16_dot.rounding_operands()  # only while the model is traced
    exact = _reference_loss(params, x, y)
    np.testing.assert_allclose(value, exact, rtol=2e-2, atol=1e-2)
    assert float(value) != float(exact)  # the operands were rounded
