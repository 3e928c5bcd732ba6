#!/usr/bin/env bash
# The GPU check, for a fresh GPU machine (about 5-8 minutes): install the cupy wheel matching
# the driver, run the whole test suite with the cuda backend present, then the GPU benchmark
# (cupy eager / compiled / compiled with CUDA graphs vs torch CUDA at batch 32 and 65536,
# kernel launches per step). Prints one summary table at the end; exits non-zero on a failure.
#     bash benchmarks/gpu_check.sh     (PYTHON=python3.11 picks the interpreter; WHEELS=/dir installs
#                                       offline from a folder of wheels, for a machine without network)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
summary=()
note() { summary+=("$(printf '%-34s %s' "$1" "$2")"); }

cuda=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\..*/\1/p' | head -1)
case "$cuda" in               # cupy wheel, and the torch CUDA index a driver of this version runs
  11) wheel=cupy-cuda11x; torch_index=cu118 ;;
  12) wheel=cupy-cuda12x; torch_index=cu126 ;;
  13) wheel=cupy-cuda13x; torch_index=cu130 ;;
  *) echo "gpu_check: no NVIDIA driver found (nvidia-smi reports CUDA '${cuda}')"; exit 1 ;;
esac
note "driver CUDA version" "$cuda -> $wheel"
if [ -n "${WHEELS:-}" ]; then from="--no-index --find-links $WHEELS"; torch_from=$from
else from=""; torch_from="--index-url https://download.pytorch.org/whl/$torch_index"; fi
timeout 240 $PY -m pip install -q $from "$wheel" numpy pytest hypothesis matplotlib tqdm \
  || { echo "gpu_check: pip install of $wheel failed"; exit 1; }
$PY -c "import torch; assert torch.cuda.is_available()" 2>/dev/null \
  || timeout 240 $PY -m pip install -q $torch_from torch \
  || echo "gpu_check: no torch CUDA wheel installed: the benchmark runs without the torch contender"
$PY -c "import tinygrad_mm as tg; assert tg.cuda_available(), 'cupy does not see the GPU'" || exit 1

start=$(date +%s)
timeout 300 $PY -m pytest -q -p no:cacheprovider tests 2>&1 | tee /tmp/gpu_check_tests.txt | tail -5
tests_rc=${PIPESTATUS[0]}
note "test suite (cpu + cuda)" "$(tail -1 /tmp/gpu_check_tests.txt) [rc $tests_rc, $(( $(date +%s) - start )) s]"
note "cuda tests run" "$(grep -c 'cuda' /tmp/gpu_check_tests.txt || true) lines mention cuda (skips listed above)"

timeout 240 $PY -m benchmarks.gpu --batches 32 65536 --repeats 5 --json /tmp/gpu_check_bench.json 2>&1 \
  | tee /tmp/gpu_check_bench.txt
bench_rc=${PIPESTATUS[0]}

echo
echo "==================== GPU check summary ===================="
printf '%s\n' "${summary[@]}"
cat /tmp/gpu_check_bench.txt
echo "benchmark rc $bench_rc; JSON in /tmp/gpu_check_bench.json"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
