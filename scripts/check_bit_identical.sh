#!/usr/bin/env bash
# Behaviour-unchanged check for refactors: trains the same short runs with two statex binaries at
# fixed OpenMP thread counts (1 and 2) and requires bit-identical loss curves, evaluations,
# StateX events, final parameters and AdamW moments (scripts/compare_runs.py).
#   scripts/check_bit_identical.sh BASELINE_BIN NEW_BIN [WORKDIR]
# Runs: GLA and Mamba2 quickstarts (shortened), and StateX runs (GLA head merge with the statex
# and scratch arms, Mamba2 d_state expansion, the control arm) with the expansion mid-run. The
# baseline's outputs are kept in WORKDIR/baseline-<hash of the binary> and reused.
# Exit code 0 when every run matches bit for bit, 1 otherwise. BASELINE_BIN=... BASELINE_ONLY=1
# only runs (and keeps) the baseline's outputs.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 BASELINE_BIN NEW_BIN [WORKDIR]" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
base_bin=$(realpath "$1")
new_bin=$(realpath "$2")
work=${3:-/tmp/statex-bit-identical}
mkdir -p "$work"

GLA="--config experiments/quickstart.ini --train.steps 300 --train.eval_every 100"
M2="--config experiments/quickstart_mamba2.ini --train.steps 150 --train.eval_every 50"
GLA_X="$GLA --model.heads 4 --statex.step 150 --statex.count 1 --statex.gla_heads 1"
M2_X="$M2 --statex.step 75 --statex.count 1 --statex.state_mult 2"
declare -A RUNS=(
  [gla_quickstart]="$GLA"
  [mamba2_quickstart]="$M2"
  [gla_statex_inherit]="$GLA_X --statex.mode inherit --statex.arm statex"
  [gla_scratch]="$GLA_X --statex.mode reinit --statex.arm scratch"
  [gla_control]="$GLA_X --statex.mode reinit --statex.arm control"
  [mamba2_statex_reinit]="$M2_X --statex.mode reinit --statex.arm statex"
)
names=(gla_quickstart mamba2_quickstart gla_statex_inherit gla_scratch gla_control
       mamba2_statex_reinit)

run_all() {  # BIN OUTDIR
  local bin=$1 out=$2
  mkdir -p "$out"
  for threads in 1 2; do
    for name in "${names[@]}"; do
      local tag="${name}_t${threads}"
      [[ -f "$out/$tag.h5" && -f "$out/${tag}_ck.h5" ]] && continue
      echo "  $tag" >&2
      # shellcheck disable=SC2086
      OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive nice -n 5 "$bin" train ${RUNS[$name]} \
        --out "$out/$tag.h5" --checkpoint-out "$out/${tag}_ck.h5" > "$out/$tag.log" 2>&1 ||
        { echo "run $tag failed with $bin (log: $out/$tag.log)" >&2; return 1; }
    done
  done
}

base_out="$work/baseline-$(sha256sum "$base_bin" | cut -c1-12)"
new_out="$work/new-$(sha256sum "$new_bin" | cut -c1-12)"
echo "baseline: $base_bin -> $base_out" >&2
run_all "$base_bin" "$base_out"
if [[ ${BASELINE_ONLY:-0} == 1 ]]; then exit 0; fi  # precompute the baseline's runs
echo "new:      $new_bin -> $new_out" >&2
run_all "$new_bin" "$new_out"

status=0
for threads in 1 2; do
  for name in "${names[@]}"; do
    tag="${name}_t${threads}"
    python3 scripts/compare_runs.py "$base_out/$tag.h5" "$new_out/$tag.h5" \
      "$base_out/${tag}_ck.h5" "$new_out/${tag}_ck.h5" --label "$tag" || status=1
  done
done
exit $status
