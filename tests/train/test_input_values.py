"""What the inputs hold: NaN in predict as in fit, non-numeric columns named so."""

import numpy as np
import pytest
from flax import nnx

from nnjax.nn import MLP
from nnjax.train import fit, predict


def test_predict_rejects_nan_inputs_as_fit_does_unless_told_not_to():
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    x = np.ones((6, 3), np.float32)
    x[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"predict: the inputs x hold NaN or inf \(example 5"):
        predict(model, x)
    assert np.isnan(predict(model, x, check_inputs=False)[5]).all()


def test_string_columns_are_named_non_numeric_not_raw_images():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.ones((8, 3), np.float32)).assign(kind="a")
    with pytest.raises(TypeError, match="non-numeric values") as caught:
        fit(MLP(4, (4,), 2, rngs=nnx.Rngs(0)), (frame, np.zeros(8, int)), loss="mse", verbose=0)
    assert "255" not in str(caught.value) and "encode them" in str(caught.value)


def test_object_arrays_of_numbers_are_not_called_text():
    x = np.ones((8, 3)).astype(object)
    with pytest.raises(TypeError, match="floating inputs") as caught:
        fit(MLP(3, (4,), 2, rngs=nnx.Rngs(0)), (x, np.zeros(8, int)), loss="mse", verbose=0)
    assert "non-numeric" not in str(caught.value)
