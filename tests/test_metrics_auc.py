"""``nnjax.metrics.roc_auc_score``: scikit-learn's binary AUC, with its labels checked.

Labels other than 0 and 1 (or -1 and 1, the hinge losses') were read as class 1 where
``> 0.5`` without a word: 2, 0.5, NaN, and -1 mixed with 0. Columns ``(N, 1)``, which
scikit-learn takes, failed in NumPy; other shapes were flattened or failed in NumPy.
"""

import re
import warnings

import numpy as np
import pytest
import sklearn.metrics as skm

from nnjax import metrics
from nnjax.errors import ShapeError

RNG = np.random.default_rng(0)
SCORES = RNG.integers(0, 8, 40) / 4.0  # few distinct values: many ties
ZERO_ONE = RNG.integers(0, 2, 40)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.DataConversionWarning")
def test_roc_auc_score_equals_sklearn_for_every_label_encoding_and_column():
    encodings = {
        "int": ZERO_ONE,
        "bool": ZERO_ONE.astype(bool),
        "float": ZERO_ONE.astype(np.float32),
        "-1/1": 2 * ZERO_ONE - 1,
        "-1/1 float": (2.0 * ZERO_ONE - 1.0).astype(np.float64),
    }
    for name, labels in encodings.items():
        want = skm.roc_auc_score(labels, SCORES)
        for s_shape, y_shape in [((40,), (40,)), ((40, 1), (40, 1)), ((40,), (40, 1))]:
            got = metrics.roc_auc_score(SCORES.reshape(s_shape), labels.reshape(y_shape))
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (name, s_shape, y_shape)
            sk = skm.roc_auc_score(labels.reshape(y_shape), SCORES.reshape(s_shape))
            assert got == pytest.approx(sk, rel=1e-12, abs=1e-12), (name, s_shape, y_shape)


@pytest.mark.parametrize("bad", [2, 0.5, np.nan, -2, -0.5])
def test_roc_auc_score_refuses_labels_that_are_not_binary(bad):
    labels = np.array([0, 1, 0, 1, 1, 0], np.float64)
    labels[[2, 5]] = bad
    value = re.escape(repr(float(bad)))
    pattern = (
        rf"^roc_auc_score: `labels\[2\]` = {value} is not a binary label \(0 and 1, or -1 "
        rf"and 1\); the bad values: {value} \(2 bad values in `labels`\)$"
    )
    with pytest.raises(ValueError, match=pattern):
        metrics.roc_auc_score(np.arange(6.0), labels)
    if isinstance(bad, int):  # integer labels too, all one class but the bad ones
        ints = np.array([0, 0, bad, 0, 0, bad])
        with pytest.raises(ValueError, match=rf"`labels\[2\]` = {bad} is not a binary label"):
            metrics.roc_auc_score(np.arange(6.0), ints)


def test_roc_auc_score_names_the_distinct_bad_labels():
    with pytest.raises(ValueError, match=r"`labels\[1\]` = 3.0 .* the bad values: 0.5, 2.0, 3.0 "
                       r"\(4 bad values"):  # fmt: skip
        metrics.roc_auc_score(np.arange(6.0), np.array([0, 3, 2, 1, 0.5, 2]))


@pytest.mark.parametrize("labels", [[-1, 0, 1, 1], [-1, -1, 0, 0], [0, -1, 0, -1]])
def test_roc_auc_score_refuses_minus_one_with_zero(labels):
    """scikit-learn reads {-1, 0, 1} as three classes and {-1, 0} with 0 positive."""
    labels = np.array(labels)
    at_minus, at_zero = int(np.argmax(labels == -1)), int(np.argmax(labels == 0))
    pattern = (
        rf"^roc_auc_score: `labels` hold both -1 \(labels\[{at_minus}\]\) and 0 "
        rf"\(labels\[{at_zero}\]\): class 0 is 0 \(0/1 labels\) or -1 \(-1/1 labels\), not both$"
    )
    with pytest.raises(ValueError, match=pattern):
        metrics.roc_auc_score(np.array([0.1, 0.4, 0.35, 0.8]), labels)


@pytest.mark.parametrize("shape", [(2, 2), (1, 4), (2, 2, 1), ()])
def test_roc_auc_score_refuses_shapes_other_than_n_or_a_column(shape):
    n = int(np.prod(shape))
    scores, labels = np.linspace(0, 1, n).reshape(shape), (np.arange(n) % 2).reshape(shape)
    pattern = (
        rf"^roc_auc_score: `scores` has shape {re.escape(str(shape))}; it needs one value per "
        r"example, \(N,\) or \(N, 1\) \(score several columns one at a time\)$"
    )
    with pytest.raises(ShapeError, match=pattern):
        metrics.roc_auc_score(scores, labels)
    with pytest.raises(ShapeError, match=r"^roc_auc_score: `labels` has shape "):
        metrics.roc_auc_score(scores.reshape(-1), labels)
    with pytest.raises(ShapeError, match=r"`scores` has shape \(4, 1\) but `labels` has shape "
                       r"\(5,\); they must match"):  # fmt: skip
        metrics.roc_auc_score(np.zeros((4, 1)), np.zeros(5))


def test_roc_auc_score_checks_labels_before_the_single_class_and_nan_score_results():
    """A single class and a NaN score still give NaN (scikit-learn warns, or raises)."""
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(skm.roc_auc_score(np.full(4, -1), scores))
    assert np.isnan(metrics.roc_auc_score(scores, np.full(4, -1)))
    assert np.isnan(metrics.roc_auc_score(np.array([0.1, np.nan, 0.3, 0.4]), [-1, 1, -1, 1]))
    with pytest.raises(ValueError, match=r"`labels\[0\]` = 2 is not a binary label"):
        metrics.roc_auc_score(scores, np.full(4, 2))  # one class of a bad label: was NaN
    with pytest.raises(ValueError, match=r"`labels\[3\]` = nan is not a binary label"):
        metrics.roc_auc_score(np.array([0.1, np.nan, 0.3, 0.4]), [0, 1, 0, np.nan])
