#!/usr/bin/env bash
# The GPU check, for a fresh GPU machine (its timeouts add up to 560 s, under the device tool's
# 600 s per command): the whole test suite with the cuda backend present, then the GPU benchmark
# (cupy eager / compiled / compiled with CUDA graphs vs torch CUDA at batch 32 and 65536,
# kernel launches per step), then one summary table.
# Exits non-zero on a failure.
#     bash benchmarks/gpu_check.sh
# The lent machines (.library/device/KINDS.md) reach no network but already hold cupy, torch
# CUDA, numpy, pytest, pytest-xdist and hypothesis under `python3`: nothing is installed unless
# WHEELS=/dir names a folder of wheels (installed offline, into /tmp/site). PYTHON picks the
# interpreter; logs and the benchmark JSON go to $OUT when set (the device tool's folder), else /tmp.
# Their torch is 2.11, not the pinned 2.13: 8 CPU tests of 2.13-only API (BatchNorm's bias=, the
# norm layers' repr) fail under it (seen here on Python 3.12 + numpy 2.5 + torch 2.11; the rest
# passed), so the summary counts the failures that name cuda apart from the others.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${OUT:-/tmp}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
summary=()
note() { summary+=("$(printf '%-28s %s' "$1" "$2")"); }
report() {
  echo
  echo "==================== GPU check summary ===================="
  printf '%s\n' "${summary[@]}"
}

note "driver" "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo none)"
if [ -n "${WHEELS:-}" ]; then
  timeout 60 $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || note "wheels" "install from $WHEELS failed"
fi
versions=$($PY - <<'EOF' 2>&1
import importlib, sys
out = [f"python {sys.version.split()[0]}"]
for name in ("numpy", "cupy", "torch", "pytest", "hypothesis", "xdist"):
    try:
        out.append(f"{name} {getattr(importlib.import_module(name), '__version__', '?')}")
    except Exception as e:
        out.append(f"{name} MISSING ({type(e).__name__})")
    if name == "torch" and "torch" in sys.modules:
        out[-1] += " (cuda)" if sys.modules["torch"].cuda.is_available() else " (no cuda)"
print(", ".join(out))
EOF
)
note "packages" "$versions"
if ! $PY -c "import tinygrad_mm as tg; assert tg.cuda_available(), 'cupy does not see the GPU'"; then
  note "cupy" "tinygrad_mm cannot use the GPU (see the traceback above)"; report; exit 1
fi

# the suite, on every core when pytest-xdist is there; -rfE lists each failure's one-line reason
par=$($PY -c "import xdist" 2>/dev/null && echo "-n auto" || echo "")
start=$(date +%s)
timeout 300 $PY -m pytest -q -p no:cacheprovider $par -rfE tests > "$LOGS/gpu_check_tests.txt" 2>&1
tests_rc=$?
tail -25 "$LOGS/gpu_check_tests.txt"
counts=$(grep -E '[0-9]+ (passed|failed)' "$LOGS/gpu_check_tests.txt" | tail -1)
note "test suite (cpu + cuda)" "$counts [rc $tests_rc, $(( $(date +%s) - start )) s]"
# a test on the cuda device has an id starting [cuda (the device is every test's first parameter)
failures() { grep -E '^(FAILED|ERROR)' "$LOGS/gpu_check_tests.txt" | grep -c "$@" -F '[cuda'; }
note "failures: on cuda / other" "$(failures) / $(failures -v)"

start=$(date +%s)
timeout 200 $PY -m benchmarks.gpu --batches 32 65536 --repeats 5 --json "$LOGS/gpu_check_bench.json" \
  > "$LOGS/gpu_check_bench.txt" 2>&1
bench_rc=$?
note "benchmark" "rc $bench_rc, $(( $(date +%s) - start )) s; JSON in $LOGS/gpu_check_bench.json"
report
cat "$LOGS/gpu_check_bench.txt"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
