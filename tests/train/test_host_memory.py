"""``nnjax.train.host_memory``: freed host memory kept for the next step (glibc)."""

import json
import os
import subprocess
import sys

import pytest

from nnjax.train import host_memory

# In a fresh process, page faults of: the second use of a 48 MiB block (malloc'd, filled,
# freed, malloc'd and filled again); a run of an XLA:CPU program whose temporary buffer
# is about 36 MiB (the median of 11 runs: a worker thread faults the first time its own
# heap serves the buffer). The probe runs once with NNJAX_RETAIN_HOST_MEMORY=1 and once
# with 0 (glibc's defaults).
_PROBE = """
import ctypes, json, resource, sys
import jax, jax.numpy as jnp
from nnjax.train import host_memory

tuned = host_memory.retain_freed_memory("cpu")
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
size = 48 << 20

def fill_and_free():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)

fill_and_free()
before = faults()
fill_and_free()
malloc_faults = faults() - before

x = jnp.linspace(0.0, 1.0, 3000 * 64).reshape(3000, 64)
f = jax.jit(lambda x: jnp.tanh(x @ x.T) @ x)
f(x).block_until_ready()
runs = []
for _ in range(11):
    before = faults()
    f(x).block_until_ready()
    runs.append(faults() - before)
xla_faults = sorted(runs)[5]  # the median run: a thread that first serves it faults once
pages = size // 4096
print(json.dumps({"tuned": tuned, "malloc": malloc_faults, "xla": xla_faults, "pages": pages}))
"""


def _probe(tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    env["NNJAX_RETAIN_HOST_MEMORY"] = "1" if tuned else "0"
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(host_memory.glibc_mallopt() is None, reason="needs glibc's mallopt")
@pytest.mark.slow
def test_freed_memory_is_reused_without_page_faults():
    default, tuned = _probe(tuned=False), _probe(tuned=True)
    assert (default["tuned"], tuned["tuned"]) == (False, True)
    pages = tuned["pages"]
    # glibc's default gives a 48 MiB block back to the OS: every page faults again
    assert default["malloc"] > pages // 2, default
    assert tuned["malloc"] < pages // 20, tuned
    # the XLA program's temporaries alike (36 MiB: about 9,000 pages by default)
    assert default["xla"] > 2000, default
    assert tuned["xla"] < default["xla"] // 5, (default, tuned)


class _Recorder:
    def __init__(self, result: int = 1):
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


@pytest.fixture
def recorder(monkeypatch):
    """A fake ``mallopt`` in place of glibc's, and a fresh once-per-process cache."""
    fake = _Recorder()
    monkeypatch.setattr(host_memory, "glibc_mallopt", lambda: fake)
    for name in ("NNJAX_RETAIN_HOST_MEMORY", "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    host_memory._tune_once.cache_clear()
    monkeypatch.setattr(host_memory, "_PERMANENT", False)
    monkeypatch.setattr(host_memory, "_runs", 0)
    yield fake
    host_memory._tune_once.cache_clear()


def test_sets_the_settings_once_per_process(recorder):
    assert host_memory.retain_freed_memory("cpu") is True
    assert host_memory.retain_freed_memory("cpu") is True
    assert recorder.calls == list(host_memory.SETTINGS)
    assert dict(recorder.calls) == {
        host_memory.M_MMAP_MAX: 0,
        host_memory.M_TOP_PAD: 64 << 20,
        host_memory.M_TRIM_THRESHOLD: 1 << 30,
    }


def test_other_backends_are_left_alone(recorder):
    assert host_memory.retain_freed_memory("gpu") is False
    assert host_memory.retain_freed_memory("tpu") is False
    assert recorder.calls == []


def test_a_refused_setting_reports_false(recorder):
    recorder.result = 0
    assert host_memory.retain_freed_memory("cpu") is False


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(host_memory, "glibc_mallopt", lambda: None)
    monkeypatch.delenv("NNJAX_RETAIN_HOST_MEMORY", raising=False)
    host_memory._tune_once.cache_clear()
    try:
        assert host_memory.retain_freed_memory("cpu") is False
    finally:
        host_memory._tune_once.cache_clear()


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_env_variable_turns_it_off(recorder, monkeypatch, value):
    monkeypatch.setenv("NNJAX_RETAIN_HOST_MEMORY", value)
    assert host_memory.retain_freed_memory("cpu") is False
    assert recorder.calls == []


@pytest.mark.parametrize(
    "environ",
    [
        {"MALLOC_TRIM_THRESHOLD_": "0"},
        {"MALLOC_ARENA_MAX_": "2"},
        {"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=1:glibc.malloc.mmap_max=0"},
        {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
        {"LD_PRELOAD": "/opt/libtcmalloc_minimal.so.4"},
    ],
)
def test_a_process_that_chose_its_allocator_is_left_alone(environ):
    assert host_memory.wanted(environ) is False


@pytest.mark.parametrize(
    "environ",
    [{}, {"NNJAX_RETAIN_HOST_MEMORY": "1"}, {"GLIBC_TUNABLES": "glibc.rtld.nns=2"},
     {"LD_PRELOAD": "/usr/lib/libfoo.so"}, {"MALLOC_CHECK": "3"}],
)  # fmt: skip
def test_otherwise_tuning_is_wanted(environ):
    assert host_memory.wanted(environ) is True


@pytest.mark.slow  # heavy (the default run stays under 10 minutes)
def test_fit_evaluate_predict_and_sweep_hold_the_settings_while_they_run(recorder, monkeypatch):
    """Set when the outermost call starts, large blocks mapped again when it returns (a
    notebook keeps no peak heap between runs); a predict inside fit changes nothing."""
    import jax
    import numpy as np
    from flax import nnx

    import nnjax
    from nnjax import nn

    model = nn.MLP(3, (4,), 2, rngs=nnx.Rngs(0))
    x, y = np.ones((8, 3), np.float32), np.zeros(8, np.int32)
    seen = []

    class Inside(nnjax.train.Callback):
        def on_epoch_end(self, epoch, logs=None):
            nnjax.train.predict(self.loop.model, x)  # nested: holds the settings
            seen.append((host_memory.retained(), list(recorder.calls)))

    one_run = [*host_memory.SETTINGS, *host_memory.DEFAULTS]
    kw = dict(loss="cross_entropy", epochs=1, batch_size=4, verbose=0)
    nnjax.train.fit(model, (x, y), callbacks=[Inside()], **kw)
    assert seen == [(True, list(host_memory.SETTINGS))]
    assert recorder.calls == one_run and not host_memory.retained()
    nnjax.train.evaluate(model, (x, y), loss="cross_entropy", batch_size=4)
    nnjax.train.predict(model, x, batch_size=4)
    make = lambda rngs: nn.MLP(3, (4,), 2, rngs=rngs)
    nnjax.train.sweep(make, (x, y), members=nnjax.train.grid(learning_rate=[0.1, 0.2]), **kw)
    assert recorder.calls == one_run * 4
    nnjax.train.predict(model, x, devices=[jax.devices()[0]])
    assert len(recorder.calls) == len(one_run) * 5


def test_after_retain_freed_memory_runs_leave_the_settings(recorder, monkeypatch):
    assert host_memory.retain_freed_memory("cpu") is True
    host_memory.retaining(lambda: None)()
    assert recorder.calls == list(host_memory.SETTINGS) and host_memory.retained()
