#!/usr/bin/env bash
# One-shot GPU check for a machine with an NVIDIA GPU (H100) and nvcc:
#   1. configure + build with CUDA (Release, -j16)
#   2. statex verify --out $OUT/verify.h5     (every op, forward + every gradient, CPU vs CUDA)
#   3. ctest -L cuda                          (the GoogleTest wrapper of the same harness)
#   4. kernel benchmarks: statex verify --bench-only (GFLOP/s, GB/s, fraction of nominal peak)
#   5. statex bench --device cuda             (train-step throughput, if that command exists)
# GPU time is scarce: every step runs even if an earlier one failed (except when the build
# produced no binary), each under a timeout, and a summary table comes at the end.
# Logs go to $OUT (default ./gpu_check_out). Usage: scripts/gpu_check.sh [build-dir]
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-gpu}"
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT"
JOBS="${JOBS:-16}"
T_START=$(date +%s)

declare -a NAMES RCS SECS
run_step() {  # run_step NAME TIMEOUT_S LOGFILE CMD...
  local name="$1" limit="$2" log="$3"
  shift 3
  echo "=== [$name] $* (timeout ${limit}s, log $log)"
  local t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" > >(tee "$log") 2>&1
  local rc=$?
  local t1=$(date +%s)
  NAMES+=("$name"); RCS+=("$rc"); SECS+=("$((t1 - t0))")
  echo "=== [$name] exit code $rc after $((t1 - t0)) s"
  return $rc
}

{
  echo "gpu_check: $(date -u +%FT%TZ) host $(hostname) repo $ROOT build $BUILD out $OUT"
  echo "git: $(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null) $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || echo "nvidia-smi failed"
  nvcc --version 2>&1 | tail -2
} | tee "$OUT/env.txt"

run_step configure 90 "$OUT/configure.log" \
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSTATEX_CUDA=ON
run_step build 300 "$OUT/build.log" cmake --build "$BUILD" -j"$JOBS"
if ! [ -x "$BUILD/statex" ]; then
  # A partial build: still try the two targets the GPU checks need.
  run_step build-min 200 "$OUT/build_min.log" cmake --build "$BUILD" -j"$JOBS" --target statex test_cuda_ops
fi
STATEX="$BUILD/statex"

if [ -x "$STATEX" ]; then
  run_step verify 180 "$OUT/verify.txt" "$STATEX" verify --out "$OUT/verify.h5"
  run_step ctest-cuda 180 "$OUT/ctest_cuda.log" \
    ctest --test-dir "$BUILD" -L cuda --output-on-failure --timeout 120
  run_step kernel-bench 150 "$OUT/kernel_bench.txt" \
    "$STATEX" verify --bench-only --gpu-reps 10 --cpu-reps 1 --out "$OUT/kernel_bench.h5"
  if "$STATEX" bench --help > /dev/null 2>&1; then
    run_step train-bench 90 "$OUT/train_bench.txt" "$STATEX" bench --device cuda
  else
    echo "=== [train-bench] skipped: 'statex bench' not implemented in this build"
  fi
else
  echo "=== no statex binary: skipping verify / ctest / bench"
fi

T_END=$(date +%s)
{
  echo
  echo "================ gpu_check summary ($((T_END - T_START)) s total) ================"
  printf "%-14s %6s %6s  %s\n" step rc secs result
  FAILED=0
  for i in "${!NAMES[@]}"; do
    r="ok"
    [ "${RCS[$i]}" -ne 0 ] && r="FAILED" && FAILED=1
    [ "${RCS[$i]}" -eq 124 ] && r="TIMEOUT"
    printf "%-14s %6s %6s  %s\n" "${NAMES[$i]}" "${RCS[$i]}" "${SECS[$i]}" "$r"
  done
  if [ -f "$OUT/verify.txt" ]; then
    echo
    echo "verify: $(grep -E 'cases, [0-9]+ failed' "$OUT/verify.txt" | tail -1)"
    grep -E ' (FAIL|ERROR) ' "$OUT/verify.txt" | head -40
  fi
  if [ -f "$OUT/ctest_cuda.log" ]; then
    echo "ctest -L cuda: $(grep -E 'tests passed|tests failed' "$OUT/ctest_cuda.log" | tail -1)"
  fi
  if [ -f "$OUT/kernel_bench.txt" ]; then
    echo
    sed -n '/^Benchmark/,$p' "$OUT/kernel_bench.txt"
  fi
  echo "logs in $OUT"
} | tee "$OUT/summary.txt"
exit $FAILED
