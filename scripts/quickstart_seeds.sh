#!/usr/bin/env bash
# The quickstarts' promise, measured: each quickstart config run for 10 seeds (train.seed s,
# mqar.seed s+1, s = 0..9) to 3,000 steps without early stopping, one thread each, two trainers
# at a time, then a table of when each seed first reached 0.95 / 0.99 and its accuracy at the end.
# The README's quickstart numbers come from this script (data/runs/quickstart_seeds/).
#
#   bash scripts/quickstart_seeds.sh [--out DIR]     (default data/runs/quickstart_seeds)
#
# Environment: STATEX_BIN=path uses that binary instead of building ./build/statex. Finished
# seeds are kept (a rerun only runs what is missing); with the portable flavour a rerun on any
# x86-64-v3 machine gives the same bits (docs/reproducibility.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/runs/quickstart_seeds
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "--out needs a directory" >&2; exit 2; }; out=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
bin=${STATEX_BIN:-}
if [ -z "$bin" ]; then
  bash scripts/build.sh statex >/dev/null
  bin=./build/statex
fi
mkdir -p "$out"
jobs=()
for config in quickstart quickstart_mamba2; do
  for s in 0 1 2 3 4 5 6 7 8 9; do
    [ -f "$out/${config}_seed$s.h5" ] || jobs+=("$config $s")
  done
done
run_one() {
  local config=$1 s=$2
  OMP_WAIT_POLICY=passive "$bin" train --config "experiments/$config.ini" --train.seed "$s" \
    --mqar.seed $((s + 1)) --train.steps 3000 --train.target_accuracy 0 --train.threads 1 \
    --out "$out/${config}_seed$s.h5" > "$out/${config}_seed$s.log" 2>&1
  echo "[quickstart_seeds] $config seed $s done" >&2
}
export -f run_one
export bin out
printf '%s\n' "${jobs[@]+"${jobs[@]}"}" | grep . | xargs -r -P 2 -L 1 bash -c 'run_one $0 $1'

python3 - "$out" <<'PY'
import sys
from pathlib import Path

import h5py
import numpy as np

out = Path(sys.argv[1])
for config in ("quickstart", "quickstart_mamba2"):
    print(f"\n{config}.ini, 10 seeds, 3,000 steps, 1 thread")
    print("seed  first>=0.95  first>=0.99  accuracy@3000  commit        flavour")
    firsts = {0.95: [], 0.99: []}
    finals = []
    for s in range(10):
        with h5py.File(out / f"{config}_seed{s}.h5", "r") as f:
            step, acc = f["eval/step"][()], f["eval/accuracy"][()]
            build = f["build"].attrs
            commit, flavour = build["git_commit"], build.get("flavour", "?")
        row = []
        for th in firsts:
            hit = np.nonzero(acc >= th)[0]
            firsts[th].append(int(step[hit[0]]) if len(hit) else None)
            row.append(firsts[th][-1])
        finals.append(float(acc[-1]))
        cells = [f"{v:>11}" if v is not None else "      never" for v in row]
        print(f"{s:>4}  {cells[0]}  {cells[1]}  {finals[-1]:>13.4f}  {commit:<12}  {flavour}")
    for th, steps in firsts.items():
        hit = sorted(v for v in steps if v is not None)
        span = f"steps {hit[0]:,}-{hit[-1]:,}, median {int(np.median(hit)):,} of those" if hit else "-"
        print(f"reached {th}: {len(hit)}/10 ({span})")
    f = np.array(finals)
    print(f"accuracy at 3,000 steps: median {np.median(f):.3f}, range {f.min():.3f}-{f.max():.3f}")
PY
