"""Bad input to fit/evaluate/predict: clear errors before anything is compiled."""

import re

import numpy as np
import optax
import pytest

import nnjax.train as T
from nnjax.train import compiled
from tests.train._data import blobs, leaves, mlp


@pytest.fixture(autouse=True)
def no_compiles(monkeypatch):
    def refuse(*args):
        raise AssertionError("compiled before the input was checked")

    monkeypatch.setattr(compiled, "compiled_train", refuse)


def _fit(data, model=None, **kw):
    kw = {"loss": "cross_entropy", "epochs": 1, "verbose": 0, **kw}
    T.fit(model or mlp(), data, **kw)


def test_mismatched_lengths():
    x, y = blobs()
    with pytest.raises(
        ValueError, match=r"same number of examples \(96\); got x \(96, 4\), y \(95,\)"
    ):
        _fit((x, y[:-1]))


def test_empty_dataset():
    x, y = blobs()
    with pytest.raises(ValueError, match="`data` is empty"):
        _fit((x[:0], y[:0]))


def test_labels_out_of_range():
    x, y = blobs()
    y = y.copy()
    y[7] = 3
    with pytest.raises(ValueError, match=r"y\[7\] = 3 is out of range.*3 outputs.*\[0, 2\]"):
        _fit((x, y))
    with pytest.raises(ValueError, match=r"`validation` y\[0\] = -1"):
        _fit(blobs(), validation_data=(x[:2], np.array([-1, 0])))


def test_wrong_input_shape_names_expected():
    x, y = blobs(d=5)
    with pytest.raises(ValueError, match=r"per-example shape \(5,\).*expects 4 input features"):
        _fit((x, y))
    with pytest.raises(ValueError, match=r"per-example shape \(5,\)"):
        T.predict(mlp(), x)


def test_uint8_images_need_scaling():
    x = np.zeros((8, 2, 2), np.uint8)
    with pytest.raises(TypeError, match=r"uint8.*astype\('float32'\) / 255"):
        _fit((x, np.zeros(8, np.int32)))


def test_loss_and_label_shapes_must_agree():
    x, y = blobs()
    with pytest.raises(ValueError, match="loss cannot compare"):
        _fit((x, y.astype(np.float32)), loss="mse")
    with pytest.raises(ValueError, match="`validation`: the loss cannot compare"):
        _fit((x, y), validation_data=(x, np.eye(4, dtype=np.float32)[y]))


def test_not_a_pair_and_bad_names():
    with pytest.raises(ValueError, match="pair"):
        _fit(blobs()[0])
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        _fit(blobs(), optimizer="adamm")
    with pytest.raises(ValueError, match="unknown loss"):
        _fit(blobs(), loss="crossentropy")


@pytest.mark.devices(4)
def test_a_batch_that_does_not_split_over_the_devices():
    import jax

    with pytest.raises(ValueError, match="cannot be split evenly over 4 devices"):
        _fit(blobs(), batch_size=6, devices=jax.devices()[:4])


def test_dict_keys_must_match_the_model_inputs():
    from flax import nnx

    from nnjax.nn import WideAndDeep

    model = WideAndDeep(3, (4, 4), 1, deep_features=2, rngs=nnx.Rngs(0))
    x = {"wide": np.ones((8, 3), np.float32), "deep": np.ones((8, 2), np.float32)}
    with pytest.raises(ValueError, match=r"keys \['deep', 'wide'\] do not match.*'x_wide'"):
        _fit((x, np.ones((8, 1), np.float32)), model=model, loss="mse")


def test_bad_sample_and_class_weights():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"sample_weight has shape \(95,\), expected \(96,\)"):
        _fit((x, y, np.ones(95)))
    w = np.ones(96)
    w[3] = -1
    with pytest.raises(ValueError, match=r"sample_weight\[3\] = -1.0; weights must be >= 0"):
        _fit((x, y, w))
    with pytest.raises(ValueError, match=r"class_weight names class \[7\].*hold \[0, 1, 2\]"):
        _fit((x, y), class_weight={0: 1.0, 7: 2.0})


def test_nan_inputs_are_named_as_inputs():
    x, y = blobs()
    x = x.copy()
    x[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"the inputs x hold NaN or inf \(example 5"):
        _fit((x, y))


def test_counts_must_be_integers():
    with pytest.raises(TypeError, match=r"`batch_size` must be an integer, got 32.5"):
        _fit(blobs(), batch_size=32.5)
    with pytest.raises(TypeError, match=r"`epochs` must be an integer, got '2'"):
        _fit(blobs(), epochs="2")
    with pytest.raises(ValueError, match=r"`accumulate_steps` must be >= 1"):
        _fit(blobs(), accumulate_steps=0)


def test_metrics_names_are_checked():
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy'; known: .*accuracy"):
        _fit(blobs(), metrics="acuracy")


@pytest.mark.parametrize("initial_epoch, kind, words", [
    (3, ValueError, "initial_epoch=3 leaves nothing to train with epochs=3"),
    (5, ValueError, "initial_epoch=5"),
    (-1, ValueError, "`initial_epoch` must be >= 0, got -1"),
    (1.5, TypeError, "`initial_epoch` must be an integer, got 1.5"),
])  # fmt: skip
def test_fit_refuses_a_meaningless_initial_epoch(initial_epoch, kind, words):
    with pytest.raises(kind, match=re.escape(words)):
        T.fit(
            mlp(), blobs(), loss="cross_entropy", epochs=3, initial_epoch=initial_epoch, verbose=0
        )


def _needs_mask(pred, y, *, mask):
    """A batch-level loss that requires ``mask (B,)``: the masked squared error of column 0."""
    import jax.numpy as jnp

    if mask.shape != (pred.shape[0],):
        raise ValueError(f"mask of shape {mask.shape} for {pred.shape[0]} rows")
    return jnp.sum((pred[:, 0] - y) ** 2 * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def test_a_batch_level_loss_may_require_mask():
    import jax
    import jax.numpy as jnp

    from nnjax.train import validation

    out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
    validation.check_loss_accepts(_needs_mask, out, np.zeros(4, np.float32))
    x, y = blobs()
    # the checks pass, so fit gets as far as compiling the step (refused here)
    with pytest.raises(AssertionError, match="compiled before the input was checked"):
        _fit((x, y.astype(np.float32)), loss=_needs_mask, metrics=())


def test_a_loss_taking_mask_still_gets_its_shape_errors_named():
    import jax
    import jax.numpy as jnp

    from nnjax.train import validation

    def wrong_rank(pred, y, mask=None):
        return jnp.mean(pred[:, 0] * jnp.ones((2, 2)))  # (1,) * (2, 2): rank promotion

    out = jax.ShapeDtypeStruct((1, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"`data`: the loss cannot compare.*\(4, 3\) float32"):
        validation.check_loss_accepts(wrong_rank, out, np.zeros(4, np.float32))


def test_evaluate_with_a_loss_requiring_mask_matches_numpy():
    x, y = blobs(n=20)  # batches of 8, 8 and 4 real rows + 4 padded
    yf, model = y.astype(np.float32), mlp()
    logs = T.evaluate(model, (x, yf), loss=_needs_mask, batch_size=8, metrics=())
    z = np.asarray(model(x))[:, 0]
    np.testing.assert_allclose(logs["loss"], np.mean((z - yf) ** 2), rtol=1e-5, atol=1e-6)


def test_shape_errors_are_shape_errors():
    from nnjax import ShapeError

    x, y = blobs()
    with pytest.raises(ShapeError, match=r"per-example shape \(5,\).*expects 4") as err:
        _fit((np.ones((96, 5), np.float32), y))
    assert isinstance(err.value.__cause__, ShapeError)
    with pytest.raises(ShapeError, match=r"`data`: every array needs the same number"):
        _fit((x, y[:-1]))
    with pytest.raises(ShapeError, match=r"sample_weight has shape \(95,\), expected \(96,\)"):
        _fit((x, y, np.ones(95)))
    with pytest.raises(ShapeError, match=r"`data`: the loss cannot compare.*\(96, 3\) float32"):
        _fit((x, np.ones((96, 5), np.float32)))
    with pytest.raises(ShapeError, match=r"`x`: the model cannot take inputs"):
        T.predict(mlp(), np.ones((4, 5), np.float32))


def test_a_loss_error_that_is_not_about_shapes_stays_a_value_error():
    from nnjax import ShapeError

    x, y = blobs()
    with pytest.raises(ValueError, match=r"loss cannot compare.*look like class ids") as err:
        _fit((x, y.astype(np.float32)))
    assert not isinstance(err.value, ShapeError)


def test_integer_targets_of_a_regression_loss_are_not_class_labels():
    import jax

    from nnjax.train import validation

    one = jax.ShapeDtypeStruct((1, 1), np.float32)
    targets = np.arange(8) % 5
    for loss in ("mse", "mae", "huber"):
        validation.check_labels(one, targets, "train", loss)
    for loss in ("binary_cross_entropy", None):  # None: the loss is unknown
        with pytest.raises(ValueError, match=r"`train` y\[2\] = 2 is out of range"):
            validation.check_labels(one, targets, "train", loss)
    three = jax.ShapeDtypeStruct((1, 3), np.float32)
    custom = lambda p, t: (p[:, 0] - t) ** 2
    validation.check_labels(one, targets, "train", custom)  # one output: maybe regression
    with pytest.raises(ValueError, match=r"y\[3\] = 3 is out of range"):  # 3 outputs: classes
        validation.check_labels(three, targets, "train", custom)


def test_steps_per_epoch_is_for_iterables_not_arrays():
    words = r"`steps_per_epoch`=1 limits the batches taken from an iterable, but `data` is "
    with pytest.raises(ValueError, match=words + r"arrays, which are always used whole"):
        _fit(blobs(), batch_size=8, steps_per_epoch=1)
    with pytest.raises(ValueError, match=r"`steps_per_epoch`=2 .* `data` is arrays"):
        _fit(blobs(), validation_split=0.25, steps_per_epoch=2)


@pytest.mark.parametrize("class_weight, kind, words", [
    ({0: -1.0, 1: 1.0, 2: 1.0}, ValueError, r"class_weight\[0\] = -1.0; weights must be finite"),
    ({0: float("nan")}, ValueError, r"class_weight\[0\] = nan"),
    ([1.0, 2.0, 1.0], TypeError, r"got list; .*pass dict\(enumerate\(weights\)\)"),
])  # fmt: skip
def test_class_weight_values_and_type(class_weight, kind, words):
    with pytest.raises(kind, match=words):
        _fit(blobs(), class_weight=class_weight)
    with pytest.raises(kind, match=words):  # an iterable too
        _fit([blobs()], class_weight=class_weight)


def test_class_weight_needs_class_labels_not_regression_targets():
    x, _ = blobs()
    t = np.random.default_rng(1).normal(size=(96, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=r"`data`: class_weight needs class labels.*\(96, 1\) "
                       r"float32 holding .*sample_weight instead"):  # fmt: skip
        _fit((x, t), model=mlp(classes=1), loss="mse", class_weight={0: 1.0, 1: 5.0})
    with pytest.raises(ValueError, match=r"batch 0: class_weight needs class labels"):
        _fit([(x, t)], model=mlp(classes=1), loss="mse", class_weight={0: 1.0, 1: 5.0})


def test_a_list_or_dict_of_arrays_is_not_data():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"`data` is a list of 2 arrays, but a list is read as "
                       r"an iterable of batches; pass the arrays as a tuple \(x, y\)"):  # fmt: skip
        _fit([x, y])
    with pytest.raises(ValueError, match=r"`data` is a list of 3 arrays"):
        _fit([x, y, np.ones(96)])
    with pytest.raises(ValueError, match=r"got a dict with keys \['x', 'y'\]: pass the arrays as "
                       r"a tuple \(x, y\)"):  # fmt: skip
        _fit({"x": x, "y": y})
    with pytest.raises(ValueError, match=r"`validation` must be a pair .* got one array"):
        _fit((x, y), validation_data=x[:8])


def test_nested_python_lists_are_named():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"`data x` holds Python numbers \(`data x\[0\]\[0\]` "
                       r"is .*\), not arrays.*np\.asarray\(x\)"):  # fmt: skip
        _fit((x.tolist(), y))
    with pytest.raises(ValueError, match=r"`data y` holds Python numbers.*np\.asarray\(y\)"):
        _fit((x, y.tolist()))


@pytest.mark.parametrize("split, kind, words", [
    ("0.2", TypeError, r"validation_split must be a number in \(0, 1\), got '0.2' \(str\)"),
    (True, TypeError, r"validation_split must be a number in \(0, 1\), got True \(bool\)"),
    (1.5, ValueError, r"validation_split must lie in \(0, 1\), got 1.5"),
])  # fmt: skip
def test_validation_split_must_be_a_fraction(split, kind, words):
    with pytest.raises(kind, match=words):
        _fit(blobs(), validation_split=split)


#: fit reaches these checks once ``setup.check_model`` calls ``src.check_labels(out,
#: objective.loss, name)`` and passes ``name=name`` to ``output_shape`` (``evaluate``
#: does both); remove the mark then.


def test_fit_checks_class_weight_classes_of_an_iterable_against_the_model():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"`data`: class_weight names class \[7\], but the "
                       r"model has 3 outputs"):  # fmt: skip
        _fit([(x[:48], y[:48]), (x[48:], y[48:])], class_weight={0: 1, 1: 1, 2: 1, 7: 5})


def test_fit_integer_regression_targets_get_the_shape_mismatch():
    from nnjax import ShapeError

    x, _ = blobs()
    with pytest.raises(ShapeError, match=r"`data`: the loss cannot compare model outputs of "
                       r"shape \(96, 2\) float32 with labels \(96,\) int"):  # fmt: skip
        _fit((x, np.arange(96) % 10), model=mlp(classes=2), loss="mse")


def test_fit_names_validation_data_whose_inputs_the_model_cannot_take():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"^`validation`: the model cannot take inputs"):
        _fit((x, y), validation_data=(np.ones((8, 5), np.float32), y[:8]))


@pytest.mark.parametrize("k", [0, -1, 2.0])
def test_fit_refuses_steps_per_dispatch_below_one_or_not_an_int(k):
    x, y = blobs()
    with pytest.raises((ValueError, TypeError), match="steps_per_dispatch"):
        _fit((x, y), steps_per_dispatch=k)  # 0 was read as "the default"


def test_sweep_refuses_steps_per_dispatch_zero():
    x, y = blobs()
    with pytest.raises(ValueError, match="steps_per_dispatch"):
        T.sweep(lambda rngs: mlp(), (x, y), loss="cross_entropy", seeds=[0, 1],
                steps_per_dispatch=0)  # fmt: skip


@pytest.mark.parametrize("flag", ["shuffle", "check_inputs", "remat", "fallback"])
def test_fit_refuses_flags_that_are_not_bools(flag):
    """A string such as "no" was truthy: shuffle="no" shuffled, remat="no" rematerialised."""
    with pytest.raises(TypeError, match=rf"fit: `{flag}` must be a Python bool.*got 'no'"):
        _fit(blobs(), **{flag: "no"})


def test_sweep_evaluate_and_predict_refuse_flags_that_are_not_bools():
    x, y = blobs()
    with pytest.raises(TypeError, match="sweep: `shuffle` must be a Python bool"):
        T.sweep(lambda rngs: mlp(), (x, y), loss="cross_entropy", shuffle=0)
    with pytest.raises(TypeError, match="evaluate: `check_inputs` must be a Python bool"):
        T.evaluate(mlp(), (x, y), loss="cross_entropy", check_inputs="no")
    with pytest.raises(TypeError, match="predict: `check_inputs` must be a Python bool"):
        T.predict(mlp(), x, check_inputs=None)


@pytest.mark.parametrize(
    "loss",
    [
        lambda labels, logits: ((logits[:, 0] - labels) ** 2).mean(),  # an IndexError
        lambda labels, logits: optax.softmax_cross_entropy_with_integer_labels(logits, labels),
    ],
)
def test_a_loss_in_kerass_argument_order_is_told_the_order(loss):
    """Named otherwise than ``y_true, y_pred`` (which are called in Keras's order)."""
    with pytest.raises(ValueError, match=r"called as loss\(predictions, y\); Keras's order"):
        _fit(blobs(), loss=loss)


def test_a_run_too_short_for_one_accumulated_update_is_refused():
    """96 examples in batches of 32: 3 batches an epoch; 4 per update needs 2 epochs (it
    trained silently, leaving the model as it was)."""
    model = mlp()
    before = leaves(model)
    words = (
        r"^accumulate_steps=4 averages the gradients of that many batches per update, "
        r"but this run reads 3 \(1 epoch\(s\) of 3\): it would never update the model"
    )
    with pytest.raises(ValueError, match=words):
        T.fit(model, blobs(), loss="cross_entropy", epochs=1, accumulate_steps=4, verbose=0)
    for a, b in zip(leaves(model), before, strict=True):
        np.testing.assert_array_equal(a, b)  # refused before training
    from nnjax.train import setup
    from nnjax.train.data import ArraySource

    x, y = blobs()
    setup.check_updates(4, ArraySource(x, y, batch_size=32), epochs=2)  # 6 batches: one update
