"""``class_weight``: checked when the source is built, its classes against the model."""

import jax
import numpy as np
import pytest

from nnjax.train import class_weights


@pytest.mark.parametrize("bad, kind, words", [
    ([1.0, 2.0], TypeError, r"got list; .*pass dict\(enumerate\(weights\)\)"),
    (np.ones(3), TypeError, r"got ndarray; .*dict\(enumerate\(weights\)\)"),
    ("balanced", TypeError, r"must be a dict \{class: weight\}, got str$"),
    ({0: -1.0, 1: 1.0}, ValueError, r"class_weight\[0\] = -1.0; weights must be finite and >= 0"),
    ({0: float("nan")}, ValueError, r"class_weight\[0\] = nan; weights must be finite"),
    ({0: np.inf}, ValueError, r"class_weight\[0\] = inf"),
    ({0: "2"}, TypeError, r"class_weight\[0\] must be a number, got '2'"),
    ({"0": 1.0}, TypeError, r"classes must be integers, got '0'"),
    ({1.0: 1.0}, TypeError, r"classes must be integers, got 1.0"),
    ({-1: 1.0}, ValueError, r"classes must be >= 0, got -1"),
])  # fmt: skip
def test_check_rejects_what_is_not_a_class_to_weight_map(bad, kind, words):
    with pytest.raises(kind, match=words):
        class_weights.check(bad)


def test_check_normalises_numpy_keys_and_values():
    assert class_weights.check({np.int64(1): np.float32(2), 0: 1}) == {1: 2.0, 0: 1.0}


def test_class_ids_of_every_kind_of_class_label():
    ids = lambda y: class_weights.class_ids("train", np.asarray(y)).tolist()
    assert ids([0, 2, 1]) == [0, 2, 1]
    assert ids([[0], [2]]) == [0, 2]  # integer (N, 1): ids, not thresholded at 0.5
    assert ids(np.array([[0.0], [1.0]], np.float32)) == [0, 1]
    assert ids([True, False]) == [1, 0]
    assert ids(np.eye(3, dtype=np.float32)[[2, 0]]) == [2, 0]
    assert ids([[0.2, 0.8], [0.7, 0.3]]) == [1, 0]  # soft labels: their argmax
    assert ids(np.arange(8).reshape(2, 4) % 3) == [[0, 1, 2, 0], [1, 2, 0, 1]]  # per token
    assert ids(np.eye(3, dtype=np.float32)[[[2, 0], [1, 1]]]) == [[2, 0], [1, 1]]  # one-hot
    assert ids(np.array([[[1.0], [0.0]]], np.float32)) == [[1, 0]]  # 0/1 per token
    assert ids(np.zeros((1, 2, 3), np.int32)) == [[[0, 0, 0], [0, 0, 0]]]  # per pixel


@pytest.mark.parametrize("y, words", [
    (np.array([[0.3], [1.0]], np.float32), r"got labels of shape \(2, 1\) float32 holding 0.3"),
    (np.array([0.0, 2.5], np.float32), r"holding 2.5 \(continuous targets\?\)"),
    (np.array([[1.5, -0.5]], np.float32), r"or \(N, T, \.\.\., C\); got labels of shape \(1, 2\)"),
])  # fmt: skip
def test_class_weight_needs_class_labels(y, words):
    with pytest.raises(ValueError, match=r"`data`: class_weight needs class labels.*" + words):
        class_weights.class_weights("`data`", y, {0: 1.0, 1: 2.0})


def test_negative_class_ids_are_refused():
    with pytest.raises(ValueError, match=r"class ids >= 0; y\[1\] = -1"):
        class_weights.class_weights("batch 0", np.array([0, -1]), {0: 2.0})


def test_class_weights_strict_and_not():
    y = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"names class \[2\] that the labels lack"):
        class_weights.class_weights("`data`", y, {2: 3.0})
    np.testing.assert_array_equal(class_weights.class_weights("b", y, {2: 3.0}, strict=False), 1)


def test_check_classes_against_the_models_outputs():
    three = jax.ShapeDtypeStruct((1, 3), np.float32)
    class_weights.check_classes({0: 1.0, 2: 2.0}, three, "train")
    with pytest.raises(ValueError, match=r"`data`: class_weight names classes \[3, 7\], but "
                       r"the model has 3 outputs, so classes lie in \[0, 2\]"):  # fmt: skip
        class_weights.check_classes({0: 1.0, 7: 2.0, 3: 1.0}, three, "data")
    one = jax.ShapeDtypeStruct((1, 1), np.float32)  # binary: classes 0 and 1
    class_weights.check_classes({0: 1.0, 1: 4.0}, one, "train")
    with pytest.raises(ValueError, match=r"1 output, so classes lie in \[0, 1\]"):
        class_weights.check_classes({2: 1.0}, one, "train")


def test_check_present_reads_every_part_of_the_users_labels():
    parts = [np.array([0, 1, 0]), np.array([[0.0, 0.0, 1.0]], np.float32)]  # ids, one-hot
    class_weights.check_present("`data`", parts, {2: 5.0, np.int64(1): 1.0})
    class_weights.check_present("`data`", [np.array([0, 1]), "unread"], {1: 2.0})
    class_weights.check_present("`data`", [np.array([0])], None)
    with pytest.raises(ValueError, match=r"^`data`: class_weight names classes \[3, 4\] that "
                       r"the labels lack \(they hold \[0, 1, 2\]\)$"):  # fmt: skip
        class_weights.check_present("`data`", parts, {3: 1.0, 4: 1.0, 0: 1.0})


def test_validation_split_keeps_a_class_that_only_the_held_out_part_holds():
    from nnjax.train import setup

    x = np.zeros((10, 3), np.float32)
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 2, 2])  # the split holds out both 2s
    weights = {0: 1.0, 1: 3.0, 2: 5.0}
    source, val = setup.sources((x, y), None, 0.2, batch_size=4, mesh_size=1, class_weight=weights)
    np.testing.assert_array_equal(source.weight, [1, 3, 1, 3, 1, 3, 1, 3])
    assert val.n == 2 and np.all(val.weight == 1)  # validation is not class-weighed (Keras)
    with pytest.raises(ValueError, match=r"`data`: class_weight names class \[7\] that the "
                       r"labels lack \(they hold \[0, 1, 2\]\)"):  # fmt: skip
        setup.sources((x, y), None, 0.2, batch_size=4, mesh_size=1, class_weight={7: 1.0})
    with pytest.raises(ValueError, match=r"class \[2\] that the labels lack \(they hold \[0, 1"):
        setup.sources((x[:8], y[:8]), None, 0.0, batch_size=4, mesh_size=1, class_weight=weights)
