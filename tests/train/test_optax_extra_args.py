"""Optax's extra arguments (``value=``) and ``optax.apply_if_finite`` under ``fit``.

Against the plain Optax + ``nnx.value_and_grad`` loop of
:mod:`tests.train.test_optax_transformations`, which passes ``value=loss`` to
``tx.update`` as Optax's ``reduce_on_plateau`` expects.
"""

import jax
import numpy as np
import optax
import pytest

import nnjax.train as T
from tests.train.test_optax_transformations import Grab, X, assert_same, fitted, reference

# 3. value= for transformations taking extra arguments


def _plateau():
    # atol=10: no update improves enough, so the scale halves after every 2 updates
    return optax.chain(
        optax.sgd(0.1),
        optax.contrib.reduce_on_plateau(factor=0.5, patience=2, rtol=0.0, atol=10.0),
    )


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_reduce_on_plateau_sees_the_loss_as_the_reference_loop():
    grab = Grab()
    model, _ = fitted(_plateau(), 2, callbacks=[grab])
    ref, state, _ = reference(_plateau(), 2, value=True)
    assert_same(model, ref)
    scale = float(grab.opt_state[1].scale)
    assert scale == pytest.approx(float(state[1].scale)) and scale < 0.2  # it reduced


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_reduce_on_plateau_under_accumulate_steps():
    model, _ = fitted(_plateau(), 2, accumulate_steps=2)
    tx = optax.MultiSteps(_plateau(), 2).gradient_transformation()
    assert_same(model, reference(tx, 2, value=True)[0])


def _needs_step_size():
    def update(updates, state, params=None, *, step_size, **extra):
        return jax.tree.map(lambda g: -step_size * g, updates), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)


def test_update_requiring_another_extra_argument_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"optimizer=: .*extra argument\(s\) 'step_size'"):
        fitted(_needs_step_size(), 1)


# 4. optax.apply_if_finite: non-finite updates are skipped, not an error

XN = X.copy()
XN[20, 1] = np.nan  # a row of the second batch


def _if_finite():
    return optax.apply_if_finite(optax.adam(1e-2), 5)


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_apply_if_finite_skips_the_nonfinite_batch_as_the_reference_loop():
    grab = Grab()
    with pytest.warns(RuntimeWarning, match="1 of 4 updates had a non-finite loss"):
        model, history = fitted(_if_finite(), 2, x=XN, check_inputs=False,
                                callbacks=[grab])  # fmt: skip
    ref, state, losses = reference(_if_finite(), 2, x=XN)
    assert_same(model, ref)
    assert int(grab.opt_state.total_notfinite) == int(state.total_notfinite) == 2
    per_epoch = np.reshape(losses, (2, 4))
    expected = [float(np.mean(e[np.isfinite(e)])) for e in per_epoch]
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5, atol=1e-6)


def test_apply_if_finite_with_no_finite_update_in_an_epoch_still_raises():
    with pytest.raises(T.NonFiniteLossError, match="non-finite training loss nan in epoch 1"):
        fitted(_if_finite(), 1, x=np.full_like(X, np.nan), check_inputs=False)


def test_without_apply_if_finite_a_nonfinite_loss_still_raises():
    with pytest.raises(T.NonFiniteLossError):
        fitted(optax.adam(1e-2), 1, x=XN, check_inputs=False)


def test_additive_metrics_leave_the_skipped_updates_out():
    with pytest.warns(RuntimeWarning, match="apply_if_finite skipped"):
        _, history = fitted(_if_finite(), 1, x=XN, check_inputs=False, metrics=["cross_entropy"])
    np.testing.assert_allclose(
        history.history["cross_entropy"], history.history["loss"], rtol=1e-5, atol=1e-6
    )
