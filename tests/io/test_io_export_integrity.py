"""Exported files carry a CRC32: a damaged file is a one-line CheckpointError, never a
wrong output; untouched files, files plain JAX wrote, and older files still load."""

import jax
import numpy as np
import pytest
from flax import nnx

import nnjax
from nnjax import nn
from nnjax.io import CheckpointError, _crc

X = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(model, bytes of its exported file)``."""
    model = nn.MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    path = nnjax.export(model, X[:1], tmp_path_factory.mktemp("export") / "mlp.jaxexport")
    return model, path.read_bytes()


def _flipped(data, offset, bit):
    damaged = bytearray(data)
    damaged[offset] ^= 1 << bit
    return bytes(damaged)


def test_an_untouched_file_round_trips(exported, tmp_path):
    model, data = exported
    path = tmp_path / "m.jaxexport"
    path.write_bytes(data)
    np.testing.assert_allclose(nnjax.load_exported(path)(X), model(X), rtol=1e-6, atol=1e-6)
    # plain JAX ignores the record after its flatbuffer
    plain = jax.export.deserialize(bytearray(data))
    np.testing.assert_allclose(plain.call(X), model(X), rtol=1e-6, atol=1e-6)


def test_every_flipped_bit_is_a_checkpoint_error_naming_the_file(exported, tmp_path):
    _, data = exported
    path = tmp_path / "m.jaxexport"
    record = range(len(data) - _crc.SEAL.size, len(data))
    # every 5th byte of the serialised function (its bit rotating), every bit of the record
    flips = [(o, o % 8) for o in range(0, record.start, 5)]
    flips += [(o, b) for o in record for b in range(8)]
    loaded = []
    for offset, bit in flips:
        path.write_bytes(_flipped(data, offset, bit))
        try:
            nnjax.load_exported(path)
        except CheckpointError as err:
            assert str(err).startswith(f"{path}: damaged"), (offset, bit, str(err))
            assert "\n" not in str(err)
        else:
            loaded.append((offset, bit))
    assert not loaded, f"damaged files that loaded: {loaded}"


def test_a_damaged_function_fails_its_crc_with_both_values(exported, tmp_path):
    _, data = exported
    path = tmp_path / "m.jaxexport"
    path.write_bytes(_flipped(data, len(data) // 2, 3))
    with pytest.raises(
        CheckpointError, match=r"fails its CRC32 check \(recorded [0-9a-f]{8}, read"
    ):
        nnjax.load_exported(path)


def test_a_file_without_the_record_still_loads(exported, tmp_path):
    # what jax.export itself writes, and what nnjax wrote before it recorded a CRC32
    model, data = exported
    path = tmp_path / "old.jaxexport"
    path.write_bytes(data[: -_crc.SEAL.size])
    np.testing.assert_allclose(nnjax.load_exported(path)(X), model(X), rtol=1e-6, atol=1e-6)
    path.write_bytes(data[: len(data) // 2])  # cut short: no record, not a function either
    with pytest.raises(CheckpointError, match=r"not an exported .* has no CRC32 record"):
        nnjax.load_exported(path)


def test_seal_and_unseal_round_trip_and_reject_a_bad_length():
    sealed = _crc.seal(b"payload")
    assert _crc.unseal(sealed, "f") == (b"payload", True)
    assert _crc.unseal(b"short", "f") == (b"short", False)
    with pytest.raises(CheckpointError, match="f: damaged: its CRC32 record is of 7 bytes but 8"):
        _crc.unseal(b"x" + sealed, "f")
