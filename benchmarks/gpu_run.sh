#!/usr/bin/env bash
# Every benchmark on an accelerator in one bounded run, for a machine lent for minutes.
#
#   benchmarks/gpu_run.sh [BUDGET_S]        # default 480 s; results under $OUT
#
# Made for the project's GPU machines (the `device` tool's `run`: no network, the image's
# own python3 with JAX, Flax, Optax, chex, Equinox and PyTorch, one command of at most 10
# minutes): nnjax is used from this checkout (PYTHONPATH), nothing is installed. Steps
# run in order of priority, each bounded by what is left of BUDGET_S, and a failing step
# does not stop the others:
#
#   env      versions, devices, the GPU (nvidia-smi), nnjax's hardware summary
#   tests    the default test suite's op tests on the accelerator
#   lstm_formulation, lstm, cnn, mlp, attention, ops, fit, sweep   the benchmark scripts
#
# A step past its limit gets SIGTERM (then SIGKILL 5 s later): every script saves its
# JSON as each batch size (op group, recurrence size) ends, marked "complete": false,
# and again on SIGTERM, so a stopped step keeps what it measured.
#
# Sized from the first run (an H200, 2026-12-04): env 12 s, tests 90 s; the peer
# scripts at their defaults ran past 70 s each, so they run four peers, shorter.
#
# Writes under ${OUT:-benchmarks/results/gpu_run}: log.txt (everything printed, one
# "== STEP rc=N in S s" line per step) and results.tgz (the scripts' JSON files), two
# files, within what the device tool brings back. ONLY=env,mlp runs a subset; QUICK=1
# passes --quick to every script (the test suite's dry run of this file, on the CPU).
set -u
cd "$(dirname "$0")/.."

budget=${1:-480}
out=${OUT:-benchmarks/results/gpu_run}
json=$(mktemp -d)
mkdir -p "$out"
py=${PYTHON:-python3}
quick=() short=(--repeats 10 --target-s 0.02) one_batch=(--batch-sizes 32)
[ "${QUICK:-0}" = 1 ] && quick=(--quick) short=() one_batch=()  # --quick sizes them itself
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU (tests)
start=$SECONDS

wanted() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# step NAME LIMIT_S COMMAND...: runs COMMAND under the smaller of LIMIT_S and what is left.
step() {
  local name=$1 limit=$2
  shift 2
  wanted "$name" || return 0
  local left=$((budget - (SECONDS - start)))
  if ((left < 15)); then
    echo "== $name skipped: the budget of ${budget} s is spent"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "== $name (at most ${limit} s)"
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@"
  echo "== $name rc=$? in $((SECONDS - t0)) s"
}

bench() {  # bench NAME LIMIT_S [OPTIONS...]: benchmarks/bench_NAME.py, JSON into $json
  local name=$1 limit=$2
  shift 2
  step "$name" "$limit" "$py" "benchmarks/bench_$name.py" "${quick[@]}" \
    --out "$json/$name.json" "$@"
}

{
  step env 60 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv || true; $py - <<'EOF'
import importlib, jax
for name in ('jax', 'jaxlib', 'flax', 'optax', 'chex', 'equinox', 'torch'):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as err:
        print(name, 'missing:', err)
print('devices', jax.devices())
from nnjax import _hardware
print('native bfloat16', _hardware.native_bfloat16())
EOF"
  # the ops against their references first: correctness before speed (90 s on an H200;
  # PyTorch at float32, TF32 off, JAX at "highest" by tests/conftest.py off the CPU)
  step tests 150 env NVIDIA_TF32_OVERRIDE=0 "$py" -m pytest -q -n 8 -p no:cacheprovider \
    --tb=line -rfE tests/functional tests/test_activations.py tests/test_losses.py \
    --ignore=tests/functional/test_data_parallel.py  # needs several devices
  # F.lstm's defaults on this backend (precompute_inputs, unroll), then the peers: the
  # informative ones, fewer and shorter samples (each script saves every batch size as it
  # ends, so one stopped by its limit keeps what it measured)
  bench lstm_formulation 90 --sizes bench --autodiff --torch --unrolls 1 4
  peers=(--peers nnjax,flax_nnx_partial,equinox,torch "${short[@]}")
  bench lstm 60 "${peers[@]}"
  bench cnn 60 "${peers[@]}"
  bench mlp 45 "${peers[@]}"
  bench attention 45 "${peers[@]}"
  bench ops 60 "${one_batch[@]}"
  bench fit 50 --models mlp,cnn --examples 12800 --epochs 2
  bench sweep 40 --models digits
  echo "== done in $((SECONDS - start)) s"
} 2>&1 | tee "$out/log.txt"

tar -czf "$out/results.tgz" -C "$json" .
rm -rf "$json"
