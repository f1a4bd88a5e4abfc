"""Tests for nnjax.train.history."""

import json
import math

from nnjax.train.history import History


def test_append_and_roundtrip_through_json():
    h = History()
    h.append(0, {"loss": 1.0})
    h.append(1, {"loss": 0.5, "val_loss": 0.7})
    assert h.epoch == [0, 1] and h["loss"] == [1.0, 0.5] and len(h) == 2
    assert math.isnan(h["val_loss"][0]) and h["val_loss"][1] == 0.7
    back = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.epoch == h.epoch and back["loss"] == h["loss"]
    assert "loss" in repr(back)


def test_amend_records_what_callbacks_added_or_changed_in_the_last_epoch():
    import numpy as np
    import pytest

    h = History()
    h.append(0, {"loss": 1.0})
    logs = {"loss": 0.5}
    h.append(1, logs)
    logs.update(extra=np.float32(2.0), note="text", loss=0.25)  # a string is left out
    h.amend(1, logs)
    assert h["loss"] == [1.0, 0.25] and math.isnan(h["extra"][0]) and h["extra"][1] == 2.0
    assert "note" not in h.history and h.epoch == [0, 1]
    with pytest.raises(ValueError, match="epoch 0 is not the last"):
        h.amend(0, logs)


def test_membership_and_iteration_go_by_metric_name():
    h = History()
    h.append(0, {"loss": 1.0, "val_loss": 2.0})
    h.append(1, {"loss": 0.5, "val_loss": 1.5})
    assert "val_loss" in h and "accuracy" not in h and 0 not in h
    assert list(h) == ["loss", "val_loss"] and len(h) == 2  # names; len counts epochs
    assert {name: h[name][-1] for name in h} == {"loss": 0.5, "val_loss": 1.5}
