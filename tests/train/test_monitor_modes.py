"""``mode="auto"``: known names get their direction, any other name asks for a mode.

As Keras 3: a monitor whose direction ``auto`` cannot tell (a metric of one's own,
``val_psnr``) raises a ValueError asking for ``mode``, before training, instead of
minimizing a score (EarlyStopping(restore_best_weights=True) kept the worst epoch).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.train as T
from nnjax.train.monitor import Monitor, auto_mode
from tests.train._data import blobs, mlp


@pytest.mark.parametrize(
    ("name", "mode"),
    [("val_r2", "max"), ("val_f1_macro", "max"), ("val_layer2_loss", "min"), ("val_mse", "min"),
     ("val_accel_loss", "min"), ("val_f1_head_loss", "min"), ("val_accel_mae", "min"),
     ("val_cls_top_k_accuracy", "max"), ("precision_micro", "max"), ("val_auc", "max"),
     ("acc", "max"), ("val_Accuracy", "max"), ("val_cosine_similarity", "max"),
     ("val_sparse_categorical_accuracy", "max"), ("binary_accuracy", "max"),
     ("val_sparse_top_k_categorical_accuracy", "max"), ("val_top_3_accuracy", "max"),
     ("val_huber", "min"), ("kl_divergence", "min"), ("val_mean_squared_error", "min")],
)  # fmt: skip
def test_known_names_keep_their_direction(name, mode):
    assert Monitor(name).mode == mode == auto_mode(name)


@pytest.mark.parametrize("name", ["val_psnr", "val_iou", "val_dice", "val_top5", "psnr"])
def test_unknown_names_ask_for_a_mode(name):
    with pytest.raises(ValueError, match=rf"'{name}' should be maximised or minimised.*mode='max'"):
        auto_mode(name)
    assert auto_mode(name, default="min") == "min"
    assert Monitor(name, mode="max").mode == "max" and Monitor(name, mode="min").mode == "min"


@pytest.mark.parametrize(
    ("make", "owner"),
    [(lambda: T.EarlyStopping("val_psnr", restore_best_weights=True), "EarlyStopping: "),
     (lambda: T.ReduceLROnPlateau("val_psnr"), ""),
     (lambda: T.ModelCheckpoint("/tmp/unused_ckpt", monitor="val_psnr"), "")],
)  # fmt: skip
def test_callbacks_refuse_auto_for_an_unknown_name_when_made(make, owner):
    """Raised where the callback is made: before fit, not after hours of training."""
    with pytest.raises(ValueError, match=f"^{owner}mode='auto' cannot tell whether 'val_psnr'"):
        make()


def psnr(pred, y):
    return -10.0 * jnp.log10(jnp.mean((pred - y) ** 2))


def test_early_stopping_with_mode_max_restores_the_best_score():
    """A score to maximise: with mode='max' the restored weights are the best epoch's."""
    x, y = blobs(n=64)
    y = jax.nn.one_hot(y, 3)
    model = mlp()
    stop = T.EarlyStopping("val_psnr", mode="max", patience=1, restore_best_weights=True)
    history = T.fit(
        model, (x, y), loss="mse", metrics=[psnr], validation_data=(x, y), epochs=4,
        batch_size=16, optimizer="sgd", learning_rate=0.5, verbose=0, callbacks=[stop],
    )  # fmt: skip
    values = history.history["val_psnr"]
    assert stop.best_epoch == int(np.argmax(values))
    logs = T.evaluate(model, (x, y), loss="mse", metrics=[psnr], batch_size=16)
    np.testing.assert_allclose(logs["psnr"], max(values), rtol=1e-5, atol=1e-6)
