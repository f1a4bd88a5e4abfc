"""The CRC32 records of nnjax.json: one per array, even when a key holds a "/".

A state key ``"a/b"`` and a key ``"b"`` under ``"a"`` once shared one record (the keys
were joined with "/"), so a valid checkpoint failed its check. Record paths now escape
"~" and "/" in each key (as JSON Pointer does), which leaves ordinary paths as they
were; files written before keep verifying (a record two arrays share is skipped).
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn
from nnjax.io import CheckpointError, _crc, trees


class SlashKeys(nnx.Module):
    """A key ``"a/b"`` beside a nested ``a -> b`` (and one with a "~")."""

    def __init__(self, k):
        self.d = nnx.Dict(
            {
                "a/b": nnx.Param(jnp.full((2,), 1.0 + k)),
                "a": nnx.Dict({"b": nnx.Param(jnp.full((3,), 2.0 + k))}),
                "t~1": nnx.Param(jnp.full((4,), 3.0 + k)),
            }
        )


def _arrays(model):
    return [np.asarray(v.get_value()) for _, v in nnx.to_flat_state(nnx.state(model))]


def _plain_records(model):
    """The records the previous nnjax wrote: keys joined with "/", the last array wins."""
    out = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, (*prefix, key))
            else:
                out["/".join((*prefix, key))] = _crc.crc32(value)

    walk(trees.to_nested(nnx.state(model)), ())
    return out


def _as_written_before(folder, records):
    """Rewrites ``folder``'s nnjax.json as the previous nnjax wrote it."""
    meta = json.loads((folder / "nnjax.json").read_text())
    meta.pop("crc32_paths", None)  # how paths are spelt: absent before
    meta[_crc.KEY] = {"state": records}
    (folder / "nnjax.json").write_text(json.dumps(meta))


def test_a_slash_in_a_key_gets_its_own_record_and_round_trips(tmp_path):
    saved = SlashKeys(0)
    folder = nnjax.save_state(saved, tmp_path / "ck")
    loaded = nnjax.load_state(SlashKeys(5), folder)  # was: "d/a/b fails its CRC32 check"
    for a, b in zip(_arrays(saved), _arrays(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    meta = json.loads((folder / "nnjax.json").read_text())
    assert meta["crc32_paths"] == "escaped"
    assert set(meta["crc32"]["state"]) == {"d/a~1b", "d/a/b", "d/t~01"}


def test_ordinary_keys_record_the_same_paths_and_values_as_before(tmp_path):
    model = nn.MLP(4, (8, 8), 3, rngs=nnx.Rngs(0))
    folder = nnjax.save(model, tmp_path / "m")
    meta = json.loads((folder / "nnjax.json").read_text())
    assert meta[_crc.KEY]["state"] == _plain_records(model)
    assert "layers/1/kernel" in meta[_crc.KEY]["state"]


def test_records_written_before_still_verify_and_catch_damage(tmp_path):
    saved = SlashKeys(0)
    folder = nnjax.save_state(saved, tmp_path / "ck")
    old = _plain_records(saved)
    assert set(old) == {"d/a/b", "d/t~1"}  # one record "d/a/b" for two arrays
    _as_written_before(folder, old)
    loaded = nnjax.load_state(SlashKeys(5), folder)  # the shared record is skipped
    for a, b in zip(_arrays(saved), _arrays(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    _as_written_before(folder, {**old, "d/t~1": old["d/t~1"] ^ 1})
    with pytest.raises(CheckpointError, match=r"ck/state: d/t~1 fails its CRC32 check"):
        nnjax.load_state(SlashKeys(5), folder)


def test_a_damaged_array_under_a_slash_key_is_still_caught(tmp_path):
    folder = nnjax.save_state(SlashKeys(0), tmp_path / "ck")
    meta = json.loads((folder / "nnjax.json").read_text())
    meta[_crc.KEY]["state"]["d/a~1b"] ^= 1
    (folder / "nnjax.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"ck/state: d/a~1b fails its CRC32 check"):
        nnjax.load_state(SlashKeys(5), folder)
