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
