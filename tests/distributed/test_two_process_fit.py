"""fit/evaluate/predict over 2 processes x 2 CPU devices equal the 1-process 4-device run.

The 2-process group (``_group.py``: one launch for the session) runs the ``fit``
scenario (``_fit_worker.py``): fit on arrays, an iterable (each process yields its rows
of each global batch), a memmap and with ``param_sharding="fsdp"``, evaluate, predict,
and checkpoints; the tests compare every result with the same calls in this (one)
process over its 4 devices (the iterable's with a fit on the same global batches, in
order, from arrays), and check the ``allreduce`` scenario (the group itself).
"""

import jax
import numpy as np
import pytest

import nnjax
from nnjax import train
from nnjax.train.checkpoint import load_checkpoint

from ._group import ATOL, W, assert_leaves_close, group, leaves_of, params, results

pytestmark = pytest.mark.slow  # the 2-process group (shared by every slow distributed test)
USES_TWO_PROCESS_GROUP = True  # conftest.py starts the group early, in the background


@pytest.fixture(scope="module")
def fit_group(tmp_path_factory):
    out = group(tmp_path_factory)
    return out / "fit", results(out, "fit")


@pytest.fixture(scope="module")
def reference():
    """The same calls in this process, over its 4 devices."""
    assert jax.device_count() == 4
    (x, y), val = W.dataset()
    model = W.make_model()
    hist = train.fit(model, (x, y), validation_data=val, verbose=0, **W.FIT)
    out = {"model": model, "arrays": params(model), "history": hist.history}
    out["evaluate"] = train.evaluate(model, val, loss="cross_entropy", batch_size=W.EVAL_BATCH)
    out["predict"] = train.predict(model, val[0], batch_size=W.EVAL_BATCH)
    out["predict_iterable"] = train.predict(model, W.global_batches(*val, size=W.EVAL_BATCH))
    unshuffled = W.make_model()  # the global batches in order (the step fit compiled above)
    train.fit(unshuffled, (x, y), verbose=0, shuffle=False, **W.FIT)
    out["unshuffled"] = params(unshuffled)
    return out


def test_two_processes_all_reduce_across_processes(tmp_path_factory):
    for i, r in enumerate(results(group(tmp_path_factory), "allreduce")):
        assert int(r["process_count"]) == 2 and int(r["index"]) == i
        assert bool(r["main"]) == (i == 0)
        assert int(r["devices"]) == 4  # 2 processes x 2 local CPU devices
        assert float(r["sum"]) == 2 * 1.0 + 2 * 2.0  # process 0 gives 1s, process 1 gives 2s


def test_every_process_ends_with_the_same_parameters(fit_group):
    _, (r0, r1) = fit_group
    for name in ("arrays", "iterable", "memmap", "fsdp"):
        for a, b in zip(leaves_of(r0, name), leaves_of(r1, name)):
            np.testing.assert_array_equal(a, b)


def test_fit_on_arrays_equals_the_one_process_run(fit_group, reference):
    _, (r0, _) = fit_group
    assert_leaves_close(leaves_of(r0, "arrays"), reference["arrays"])
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            r0[f"arrays_{name}"], reference["history"][name], rtol=1e-5, atol=ATOL
        )


def test_fit_on_an_iterable_of_process_blocks_equals_global_batches(fit_group, reference):
    _, (r0, _) = fit_group  # each process's rows of each global batch, in order
    assert_leaves_close(leaves_of(r0, "iterable"), reference["unshuffled"])


def test_fit_on_a_memmap_equals_arrays(fit_group, reference):
    _, (r0, _) = fit_group
    assert_leaves_close(leaves_of(r0, "memmap"), reference["arrays"])


def test_weights_per_token_and_weighted_metrics_equal_the_one_process_run(fit_group):
    _, (r0, r1) = fit_group
    model, logs = W.fit_tokens()  # this process, its 4 devices
    for r in (r0, r1):
        assert_leaves_close(leaves_of(r, "tokens"), params(model))
        np.testing.assert_allclose(r["tokens_logs"], logs, rtol=1e-5, atol=ATOL)


def test_fsdp_over_processes_equals_replicated(fit_group, reference):
    _, (r0, _) = fit_group
    assert_leaves_close(leaves_of(r0, "fsdp"), reference["arrays"])


def test_evaluate_and_predict_equal_the_one_process_run(fit_group, reference):
    _, both = fit_group
    want = reference["evaluate"]
    for r in both:
        np.testing.assert_allclose(r["evaluate"], [want["loss"], want["accuracy"]], atol=ATOL)
        np.testing.assert_allclose(r["predict"], reference["predict"], rtol=1e-5, atol=ATOL)
        assert r["predict_iterable"].shape == (W.N_VAL, W.CLASSES)
        np.testing.assert_allclose(
            r["predict_iterable"], reference["predict_iterable"], rtol=1e-5, atol=ATOL
        )


def test_only_process_0_prints(fit_group):
    out, _ = fit_group
    first, second = (out / "0.log").read_text(), (out / "1.log").read_text()
    assert "Epoch 1/2" in first and "Epoch 2/2" in first
    assert second == ""


def test_checkpoints_written_by_two_processes_restore_in_one(fit_group):
    out, (r0, _) = fit_group
    model = W.make_model()
    meta = load_checkpoint(out / "ckpt", model)
    assert meta["epoch"] == W.FIT["epochs"] - 1
    assert_leaves_close(params(model), leaves_of(r0, "fsdp"))
    loaded = nnjax.load(out / "saved")
    assert_leaves_close(params(loaded), leaves_of(r0, "fsdp"))
