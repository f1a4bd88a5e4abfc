"""IDX parsing, gzip handling and checksums, on hand-made files."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from nnjax.data import idx
from nnjax.data.errors import CorruptFileError, UnreadableFileError

from ._helpers import idx_bytes


def test_parse_idx_matches_struct_written_images():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = idx.parse_idx(idx_bytes(images), magic=idx.IMAGES_MAGIC)
    np.testing.assert_array_equal(out, images)
    assert out.dtype == np.uint8 and out.flags.writeable


@pytest.mark.parametrize(
    ("code", "fmt", "dtype"),
    [(0x0B, ">h", np.int16), (0x0C, ">i", np.int32), (0x0D, ">f", np.float32)],
)
def test_parse_idx_big_endian_types(code, fmt, dtype):
    values = [1, -2, 300]
    raw = struct.pack(">HBBI", 0, code, 1, 3) + b"".join(struct.pack(fmt, v) for v in values)
    out = idx.parse_idx(raw)
    np.testing.assert_array_equal(out, np.array(values, dtype=dtype))
    assert out.dtype == np.dtype(dtype).newbyteorder("=")


def test_bad_magic_names_file_and_numbers():
    raw = idx_bytes(np.zeros(3, np.uint8))
    with pytest.raises(
        CorruptFileError, match=r"f\.gz: bad magic: magic number 2049.*expected 2051"
    ):
        idx.parse_idx(raw, name="f.gz", magic=idx.IMAGES_MAGIC)


def test_unknown_type_code_is_bad_magic():
    with pytest.raises(CorruptFileError) as err:
        idx.parse_idx(b"\0\0\x07\x01\0\0\0\x01\x05")
    assert err.value.reason == "bad magic"


def test_truncated_body():
    raw = idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-10]
    with pytest.raises(CorruptFileError, match=r"truncated.*shape \(4, 28, 28\)") as err:
        idx.parse_idx(raw, magic=idx.IMAGES_MAGIC, remedy="Get another copy")
    assert err.value.reason == "truncated"
    assert str(err.value).endswith("Get another copy")


@pytest.mark.parametrize("raw", [b"\0\0", b"\0\0\x08\x03\0\0\0\x01"])
def test_short_header(raw):
    with pytest.raises(CorruptFileError) as err:
        idx.parse_idx(raw)
    assert err.value.reason == "bad header"


def test_trailing_bytes_are_bad_header():
    raw = idx_bytes(np.zeros(3, np.uint8)) + b"\0"
    with pytest.raises(CorruptFileError) as err:
        idx.parse_idx(raw, magic=idx.LABELS_MAGIC)
    assert err.value.reason == "bad header"


def test_decompress_multi_member_and_recompressed():
    data = bytes(range(256)) * 10
    joined = gzip.compress(data[:1000], compresslevel=1) + gzip.compress(data[1000:], 9)
    assert idx.decompress(joined) == data


def test_decompress_truncated_and_garbage():
    packed = gzip.compress(bytes(range(256)) * 100)
    with pytest.raises(CorruptFileError) as err:
        idx.decompress(packed[: len(packed) // 2], name="x.gz")
    assert err.value.reason == "truncated" and "x.gz" in str(err.value)
    with pytest.raises(CorruptFileError) as err:
        idx.decompress(b"this is not gzip at all")
    assert err.value.reason == "not gzip"


def test_decompress_bad_crc():
    packed = bytearray(gzip.compress(b"hello world" * 10))
    packed[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    with pytest.raises(CorruptFileError) as err:
        idx.decompress(bytes(packed))
    assert err.value.reason == "not gzip"


def test_check_digest():
    data = b"abc"
    md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    idx.check_digest(data, md5=md5, sha256=sha)
    with pytest.raises(CorruptFileError, match=f"sha256 .* expected {'0' * 64}") as err:
        idx.check_digest(data, md5=md5, sha256="0" * 64, name="f")
    assert err.value.reason == "checksum mismatch"
    with pytest.raises(CorruptFileError, match="md5"):
        idx.check_digest(data, md5="0" * 32)


def test_read_idx_gz_checks_structure_before_checksum(tmp_path):
    raw = idx_bytes(np.arange(5, dtype=np.uint8))
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(
        idx.read_idx_gz(path, magic=idx.LABELS_MAGIC, md5=hashlib.md5(raw).hexdigest()),
        np.arange(5),
    )
    with pytest.raises(CorruptFileError) as err:
        idx.read_idx_gz(path, magic=idx.IMAGES_MAGIC, md5="0" * 32)
    assert err.value.reason == "bad magic" and err.value.path == str(path)


def test_header_whose_size_overflows_int64_is_truncated_not_valueerror():
    """U17: the size used to overflow int64 and give a plain reshape ValueError."""
    raw = bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")
    with pytest.raises(CorruptFileError) as err:
        idx.parse_idx(raw, name="big.idx")
    assert err.value.reason == "truncated" and "(2147483648, 2147483648, 4)" in str(err.value)


@pytest.mark.parametrize("data", ["\0\0\x08\x01", None, [0, 0, 8, 1]])
def test_parse_idx_needs_bytes(data):
    """U17: a str got a confusing TypeError from deep inside."""
    with pytest.raises(TypeError, match=r"parse_idx: `data` must be the bytes of an IDX file, got"):
        idx.parse_idx(data)


def test_parse_idx_accepts_bytearray_and_memoryview():
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 2])
    assert idx.parse_idx(bytearray(raw)).tolist() == [4, 2]
    assert idx.parse_idx(memoryview(raw)).tolist() == [4, 2]


# The IDX format: bytes 0-1 zero, byte 2 the type code, byte 3 the rank, then one
# big-endian uint32 size per axis, then the values big-endian, C order.
_SPEC_TYPES = {0x08: ("B", 1), 0x09: ("b", 1), 0x0B: ("h", 2), 0x0C: ("i", 4)}
_SPEC_TYPES |= {0x0D: ("f", 4), 0x0E: ("d", 8)}


def _reference_parse(raw: bytes) -> np.ndarray:
    """An IDX reader written from the format description with struct (not nnjax)."""
    zero, code, rank = struct.unpack(">HBB", raw[:4])
    assert zero == 0
    shape = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    fmt, size = _SPEC_TYPES[code]
    count = int(np.prod(shape))
    body = raw[4 + 4 * rank :]
    assert len(body) == count * size
    values = struct.unpack(f">{count}{fmt}", body)
    return np.array(values).reshape(shape)


def _spec_file(code: int, shape: tuple[int, ...], rng) -> bytes:
    fmt, _ = _SPEC_TYPES[code]
    count = int(np.prod(shape))
    if fmt in "Bb":
        low, high = (0, 256) if fmt == "B" else (-128, 128)
        values = rng.integers(low, high, count).tolist()
    elif fmt in "hi":
        values = rng.integers(-(2 ** (8 * struct.calcsize(fmt) - 1)), 2**15, count).tolist()
    else:
        values = (rng.normal(size=count) * 1e3).tolist()
    header = struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    return header + struct.pack(f">{count}{fmt}", *values)


@pytest.mark.parametrize("code", sorted(_SPEC_TYPES))
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (3, 0, 2), (2, 1, 3, 2)])
def test_every_type_code_and_rank_matches_a_struct_reader(code, shape):
    raw = _spec_file(code, shape, np.random.default_rng(code))
    out = idx.parse_idx(raw, name="spec.idx")
    ref = _reference_parse(raw)
    assert out.shape == shape and out.dtype.isnative and out.flags.writeable
    assert out.dtype.itemsize == _SPEC_TYPES[code][1]
    assert out.dtype.kind == ("f" if code >= 0x0D else "u" if code == 0x08 else "i")
    np.testing.assert_array_equal(out, ref)  # float32 values are exact in float64


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_truncated_and_oversized_bodies_of_every_type(cut):
    for code in _SPEC_TYPES:
        raw = _spec_file(code, (3, 2), np.random.default_rng(0))
        with pytest.raises(CorruptFileError) as err:
            idx.parse_idx(raw[:-cut])
        assert err.value.reason == "truncated"
        with pytest.raises(CorruptFileError) as err:
            idx.parse_idx(raw + bytes(cut))
        assert err.value.reason == "bad header"


@pytest.mark.parametrize("path", [5, None, 1.5])
def test_read_idx_gz_needs_a_path(path):
    """S35-E4: os.fspath's 'expected str, bytes or os.PathLike object' named nothing."""
    with pytest.raises(TypeError, match=r"read_idx_gz: `path` must be a path .*, got"):
        idx.read_idx_gz(path)


def test_read_idx_gz_path_kinds_and_missing_file(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 2])))
    for p in (path, str(path), bytes(path)):
        assert idx.read_idx_gz(p).tolist() == [4, 2]
    with pytest.raises(FileNotFoundError, match=r"missing\.gz"):
        idx.read_idx_gz(tmp_path / "missing.gz")


def test_read_idx_gz_on_a_folder_says_so(tmp_path):
    """S35-E4: a folder got 'Is a directory. Make it readable (e.g. `chmod a+r`)'."""
    with pytest.raises(UnreadableFileError) as err:
        idx.read_idx_gz(tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}: unreadable: ") and "It is a folder" in msg
    assert "chmod" not in msg
