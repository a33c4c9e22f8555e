#!/usr/bin/env bash
# GPU checks with binaries built ELSEWHERE: scripts/gpu_pack.sh builds them on a CPU machine with
# nvcc and packs them with their shared libraries into .gpu/, for GPU hosts that cannot build
# the project (e.g. no Boost.Program_options library). Each step runs under a timeout and the
# script continues after failures:
#   1. statex verify --bench        every op vs the CPU reference + kernel throughput
#   2. test_cuda_ops                the GoogleTest `cuda` label
#   3. statex bench --device cuda   per-kernel table, then train steps on GPU and CPU: the ratio
#   4. quickstart GLA and Mamba2 trained on the GPU (compare with the CPU runs)
#   5. the canonical CPU-sized sweeps, run on the GPU with device = cuda, until DEADLINE_S
# Everything lands in $OUT/session/ and is packed into $OUT/gpu_session.tgz.
# Usage: OUT=... DEADLINE_S=540 bash scripts/gpu_session.sh
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACK="$ROOT/.gpu"
OUT="${OUT:-$ROOT/gpu_session_out}"
W="$OUT/session"
mkdir -p "$W"
export LD_LIBRARY_PATH="$PACK/lib:${LD_LIBRARY_PATH:-}"
STATEX="$PACK/statex"
T0=$(date +%s)
DEADLINE=$((T0 + ${DEADLINE_S:-540}))
declare -a NAMES RCS SECS
run_step() {  # run_step NAME TIMEOUT_S CMD...  (timeout capped by the deadline)
  local name="$1" limit="$2"
  shift 2
  local left=$((DEADLINE - $(date +%s) - 15))
  if [ "$left" -lt 10 ]; then echo "=== [$name] skipped: deadline"; NAMES+=("$name"); RCS+=("skip"); SECS+=(0); return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== [$name] $* (timeout ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$W/$name.log" 2>&1
  local rc=$?
  NAMES+=("$name"); RCS+=("$rc"); SECS+=("$(( $(date +%s) - t0 ))")
  tail -n "${TAIL:-4}" "$W/$name.log"
  echo "=== [$name] exit $rc after ${SECS[-1]} s"
}
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  echo "host cores: $(nproc)"
} 2>&1 | tee "$W/env.txt"

TAIL=40 run_step verify 150 "$STATEX" verify --out "$W/verify.h5" --bench
run_step cuda_tests 90 "$PACK/test_cuda_ops"
TAIL=60 run_step bench_cuda 150 "$STATEX" bench --device cuda --preset all --steps 10 --kernels \
  --cpu-steps 2
run_step train_gla 90 "$STATEX" train --config "$ROOT/experiments/quickstart.ini" --device cuda \
  --out "$W/gpu_quickstart_gla.h5"
run_step train_mamba2 90 "$STATEX" train --config "$ROOT/experiments/quickstart_mamba2.ini" \
  --device cuda --out "$W/gpu_quickstart_mamba2.h5"
for name in ${SWEEPS:-}; do
  sed 's/^device = cpu/device = cuda/' "$ROOT/experiments/sweeps/$name.ini" > "$W/$name.ini"
  run_step "sweep_$name" 600 "$STATEX" sweep "$W/$name.ini" --out "$W/sweeps/$name" --jobs 4 --threads-per-job 2
done

echo
echo "step                                exit   seconds"
for i in "${!NAMES[@]}"; do printf "%-35s %5s %9s\n" "${NAMES[$i]}" "${RCS[$i]}" "${SECS[$i]}"; done | tee "$W/summary.txt"
cp "$W/summary.txt" "$OUT/summary.txt"
(cd "$OUT" && tar czf gpu_session.tgz session && rm -rf session)
ls -la "$OUT"
