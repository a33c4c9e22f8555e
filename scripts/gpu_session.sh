#!/usr/bin/env bash
# GPU checks with binaries built ELSEWHERE (scripts/gpu_pack.sh builds them on a CPU machine
# with nvcc and packs them with their shared libraries into .gpu/). For GPU hosts that cannot
# build the project themselves (e.g. no Boost.Program_options library). Runs, each under a
# timeout and continuing after failures:
#   1. statex verify --bench        (every op vs the CPU reference + kernel throughput)
#   2. test_cuda_ops                (the GoogleTest cuda label)
#   3. statex bench --device cuda and --device cpu (same presets, same host: the ratio)
#   4. quickstart GLA and Mamba2 trained on the GPU (compare with the CPU runs' accuracy)
#   5. optional: canonical sweeps on the GPU (SWEEPS=1)
# Logs and HDF5 files go to $OUT. Usage: bash scripts/gpu_session.sh
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACK="$ROOT/.gpu"
OUT="${OUT:-$ROOT/gpu_session_out}"
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PACK/lib:${LD_LIBRARY_PATH:-}"
STATEX="$PACK/statex"
declare -a NAMES RCS SECS
run_step() {  # run_step NAME TIMEOUT_S CMD...
  local name="$1" limit="$2"
  shift 2
  echo "=== [$name] $* (timeout ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
  local rc=$?
  NAMES+=("$name"); RCS+=("$rc"); SECS+=("$(( $(date +%s) - t0 ))")
  echo "=== [$name] exit $rc after ${SECS[-1]} s"
}
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nproc
} 2>&1 | tee "$OUT/env.txt"

run_step verify 150 "$STATEX" verify --out "$OUT/verify.h5" --bench
run_step cuda_tests 90 "$PACK/test_cuda_ops"
run_step bench_cuda 90 "$STATEX" bench --device cuda --preset all --steps 10
run_step bench_cpu 120 "$STATEX" bench --device cpu --preset quickstart-gla,quickstart-mamba2,gla-d128,mamba2-d128 --steps 3
run_step train_gla 90 "$STATEX" train --config "$ROOT/experiments/quickstart.ini" --device cuda \
  --out "$OUT/gpu_quickstart_gla.h5"
run_step train_mamba2 90 "$STATEX" train --config "$ROOT/experiments/quickstart_mamba2.ini" \
  --device cuda --out "$OUT/gpu_quickstart_mamba2.h5"
if [ "${SWEEPS:-0}" = 1 ]; then
  for f in ${SWEEP_FILES:-}; do
    name=$(basename "$f" .ini)
    run_step "sweep_$name" "${SWEEP_TIMEOUT:-120}" "$STATEX" sweep "$ROOT/$f" --out "$OUT/sweeps/$name" \
      --jobs 4 --threads-per-job 2
  done
  (cd "$OUT" && tar czf sweeps.tgz sweeps && rm -rf sweeps)
fi

echo
echo "step            exit   seconds"
for i in "${!NAMES[@]}"; do printf "%-15s %4s %9s\n" "${NAMES[$i]}" "${RCS[$i]}" "${SECS[$i]}"; done | tee "$OUT/summary.txt"
