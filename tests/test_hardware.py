"""nnjax._hardware: CPU flags from /proc/cpuinfo text and the native-bfloat16 decision."""

import jax
import jax.numpy as jnp
import pytest

from nnjax import _hardware

AVX2 = "processor : 0\nflags : fpu sse avx2 fma\n\nprocessor : 1\nflags : fpu sse avx2 fma\n"
AMX = "flags : fpu avx2 avx512f amx_tile amx_bf16\n"
AVX512_BF16 = "flags : fpu avx2 avx512f avx512_bf16\n"
INTEL = "vendor_id : GenuineIntel\n"
AMD = "vendor_id : AuthenticAMD\n"


def test_cpu_flags_parse_every_flags_line():
    flags = _hardware.cpu_flags(AVX2)
    assert set(flags) == set(_hardware.SIMD_FLAGS)
    assert flags["avx2"] and flags["fma"] and not flags["avx512f"] and not flags["amx_bf16"]
    assert _hardware.cpu_flags("")["avx2"] is False
    assert _hardware.cpu_flags(AMX)["amx_bf16"]


@pytest.mark.parametrize(
    ("text", "case"),
    [
        (AVX2, "none (bfloat16 emulated"),
        (INTEL + AVX2, "none (bfloat16 emulated"),
        (AMX, "AMX (native"),
        (INTEL + AMX, "AMX (native"),
        (AVX512_BF16, "AVX512-BF16 (native"),
        (AMD + AVX512_BF16, "AVX512-BF16 (native"),
        (INTEL + AVX512_BF16, "AVX512-BF16 without AMX on GenuineIntel (bfloat16 dot products"),
    ],
)
def test_bfloat16_hardware_names_the_case(text, case):
    flags, vendor = _hardware.cpu_flags(text), _hardware.cpu_vendor(text)
    assert _hardware.bfloat16_hardware(flags, vendor).startswith(case)
    in_float32 = "computes in float32" in _hardware.bfloat16_hardware(flags, vendor)
    assert in_float32 is not _hardware.fast_bfloat16(flags, vendor)


def test_cpu_vendor_reads_the_vendor_id_line():
    assert _hardware.cpu_vendor("processor : 0\n" + INTEL + AVX2) == "GenuineIntel"
    assert _hardware.cpu_vendor(AMD + AMD) == "AuthenticAMD"
    assert _hardware.cpu_vendor(AVX2) == ""
    assert isinstance(_hardware.cpu_vendor(), str)


@pytest.mark.parametrize(
    ("text", "native"),
    [
        (AVX2, False),
        (AMX, True),
        ("", False),
        (INTEL + AMX, True),  # Sapphire Rapids with AMX
        (AMD + AVX512_BF16, True),  # Zen 4, Zen 5
        (INTEL + AVX512_BF16, False),  # Cooper Lake, or AMX hidden by a hypervisor
        (AVX512_BF16, True),  # vendor unknown
    ],
)
def test_native_bfloat16_on_cpu_follows_the_flags(monkeypatch, text, native):
    monkeypatch.setattr(_hardware, "_read_cpuinfo", lambda: text)
    _hardware._cpu_native_bfloat16.cache_clear()
    try:
        assert _hardware.native_bfloat16("cpu") is native
        assert _hardware.native_bfloat16("gpu") and _hardware.native_bfloat16("tpu")
    finally:
        _hardware._cpu_native_bfloat16.cache_clear()


@pytest.mark.parametrize(
    ("text", "wide"),
    [
        ("flags : avx2 avx512f avx512_bf16\n", True),  # Zen 4, Cooper Lake
        (AMX, True),  # Sapphire Rapids
        ("flags : avx2 avx512f\n", False),  # Skylake-SP: 512-bit code lowers its clock
        (AVX2, False),
        ("", False),
    ],
)
def test_wide_vectors_need_avx512_with_a_bfloat16_extension(monkeypatch, text, wide):
    monkeypatch.setattr(_hardware, "_read_cpuinfo", lambda: text)
    _hardware.wide_vectors.cache_clear()
    try:
        assert _hardware.wide_vectors() is wide
    finally:
        _hardware.wide_vectors.cache_clear()


def test_upcast_matmuls_only_for_bfloat16_without_native_support():
    emulated = not _hardware.native_bfloat16()
    assert _hardware.upcast_matmuls(jnp.bfloat16) is emulated
    assert jax.default_backend() != "cpu" or emulated == (not _hardware._cpu_native_bfloat16())
    for dtype in (jnp.float32, jnp.float16, jnp.float64):
        assert _hardware.upcast_matmuls(dtype) is False


def test_cpu_model_reads_the_model_name_line():
    assert _hardware.cpu_model(AVX2 + "model name\t: AMD EPYC 7B12\n") == "AMD EPYC 7B12"
    assert _hardware.cpu_model("flags : avx2\n") == "unknown CPU"
    assert isinstance(_hardware.cpu_model(), str) and _hardware.cpu_model()


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        ("", "where XLA emulates bfloat16"),
        (AVX2, "where XLA emulates bfloat16"),
        (INTEL + AVX512_BF16, "avx512_bf16 without amx_bf16), whose bfloat16 dot products"),
    ],
)
def test_emulated_bfloat16_note_names_the_cpu_and_the_missing_flags(monkeypatch, flags, why):
    text = "model name : Test CPU 9000\n" + flags
    monkeypatch.setattr(_hardware, "_read_cpuinfo", lambda: text)
    note = _hardware.emulated_bfloat16_note()
    assert note.startswith("precision='bfloat16' computes in float32 on this CPU (Test CPU 9000")
    assert all(flag in note for flag in _hardware.BFLOAT16_FLAGS) and why in note


def test_widen_bfloat16_on_every_cpu_and_where_bfloat16_is_emulated(monkeypatch):
    for native in (False, True):
        monkeypatch.setattr(_hardware, "native_bfloat16", lambda backend=None, n=native: n)
        cpu = jax.default_backend() == "cpu"
        assert _hardware.widen_bfloat16(jnp.bfloat16) is (cpu or not native)
        assert _hardware.bfloat16_dots(jnp.bfloat16) is (cpu and native)
        for dtype in (jnp.float32, jnp.float16):
            assert _hardware.widen_bfloat16(dtype) is False
            assert _hardware.bfloat16_dots(dtype) is False


@pytest.mark.parametrize(
    ("probe", "text", "present"),
    [
        ("amx_bfloat16", AVX2, False),
        ("amx_bfloat16", AMX, True),
        ("amx_bfloat16", "flags : avx512f avx512_bf16\n", False),
        ("avx512", AVX2, False),
        ("avx512", AMX, True),
        ("avx512", "flags : avx512f\n", True),
        ("avx512", "", False),
    ],
)
def test_cached_probes_follow_their_flag(monkeypatch, probe, text, present):
    """``amx_bfloat16`` reads ``amx_bf16``, ``avx512`` reads ``avx512f``."""
    monkeypatch.setattr(_hardware, "_read_cpuinfo", lambda: text)
    fn = getattr(_hardware, probe)
    fn.cache_clear()
    try:
        assert fn() is present
    finally:
        fn.cache_clear()
