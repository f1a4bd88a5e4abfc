"""The host never queues more than a few dispatches ahead of the devices.

On jax 0.10's CPU backend, a program with an all-reduce over several local devices
deadlocks once 32 executions are queued per device (XLA then aborts the process after
40 s). ``fit`` (small batches, one update per dispatch), ``evaluate`` and ``sweep`` (a
wide MLP) over the suite's four fake CPU devices reached it before
``nnjax.train.in_flight``, the host dispatching faster than two cores run four devices:
these tests then crashed their worker instead of passing (``predict`` has no
collective; it is bounded all the same).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nnjax import nn, train
from nnjax.train import in_flight


class Recorder:
    """An output that records when the host waited for it."""

    def __init__(self, index: int, log: list[int]):
        self.index, self.log = index, log

    def block_until_ready(self):
        self.log.append(self.index)
        return self


def test_collect_waits_for_the_output_depth_dispatches_back():
    log: list[int] = []
    dispatched: list[int] = []

    def dispatches():
        for i in range(10):
            dispatched.append(i)
            # when dispatch i starts, every dispatch up to i - depth - 1 was waited for
            assert [j for j in range(i - 3) if j not in log] == []
            yield Recorder(i, log)

    outs = in_flight.collect(dispatches(), depth=3)
    assert [o.index for o in outs] == list(range(10))
    assert log == list(range(7))  # the last 3 are left queued


def test_throttle_waits_only_beyond_the_depth():
    log: list[int] = []
    outs = [Recorder(i, log) for i in range(3)]
    in_flight.throttle(outs[:2], depth=2)
    assert log == []
    in_flight.throttle(outs, depth=2)
    assert log == [0]


def test_collect_returns_device_arrays_in_order():
    double = jax.jit(lambda x: 2 * x)
    outs = in_flight.collect(double(jnp.asarray(i)) for i in range(12))
    np.testing.assert_array_equal([int(o) for o in outs], 2 * np.arange(12))


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_must_be_positive(depth):
    with pytest.raises(ValueError, match=f"depth must be at least 1, got {depth}"):
        in_flight.throttle([], depth=depth)


ROWS = 1600  # 400 dispatches of 4 rows, one row per device


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32)


def _model():
    return nn.MLP(6, (8,), 2, rngs=nnx.Rngs(0))


@pytest.mark.devices(4)
def test_fit_over_every_device_with_one_update_per_dispatch_completes(data):
    assert jax.local_device_count() == 4
    model = _model()
    history = train.fit(
        model,
        data,
        loss="cross_entropy",
        optimizer=optax.sgd(0.1),
        batch_size=4,
        steps_per_dispatch=1,
        verbose=0,
        metrics=["accuracy"],
    )
    assert history.history["accuracy"][0] > 0.8


def _wide_data():
    """300 batches of 64 examples, 64 features: the label is the first feature's sign."""
    x = np.random.default_rng(1).standard_normal((64 * 300, 64)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32)


@pytest.mark.slow
def test_evaluate_and_predict_over_many_batches_complete():
    # wide enough that the devices fall behind the host (evaluation dispatches faster
    # than training: no callbacks, no optimizer)
    x, y = _wide_data()
    model = nn.MLP(64, (512, 512), 2, rngs=nnx.Rngs(0))
    logs = train.evaluate(model, (x, y), loss="cross_entropy", batch_size=64, metrics=["accuracy"])
    logits = train.predict(model, x, batch_size=64)
    expected = np.asarray(model(jnp.asarray(x)))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["accuracy"], np.mean(np.argmax(expected, -1) == y))


@pytest.mark.slow
def test_sweep_over_every_device_with_one_update_per_dispatch_completes():
    x, y = _wide_data()
    result = train.sweep(
        lambda rngs: nn.MLP(64, (256, 256), 2, rngs=rngs),
        (x, y),
        loss="cross_entropy",
        optimizer="sgd",
        hyperparams={"learning_rate": [0.05, 0.1]},
        batch_size=64,
        steps_per_dispatch=1,
        metrics=["accuracy"],
    )
    assert result.history["accuracy"].shape == (2, 1)
    assert np.all(result.history["accuracy"][:, -1] > 0.8)
