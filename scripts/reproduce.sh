#!/usr/bin/env bash
# Regenerates every number and figure of the README's results sections in one folder:
# runs the canonical sweeps (experiments/canonical/*.ini; finished trials are reused), runs the
# analysis (tables as markdown + CSV, figures), and records what produced them (commit, dirty
# flag, the binary's build commit, date, command).
#
# Usage: bash scripts/reproduce.sh [--quick] [--out DIR] [--jobs N] [--threads T] [--only NAME[,...]]
#                                  [--dir SWEEPS]
#   --quick   seeds 0, 1, 2 of every cell instead of all the file's seeds (same trials, so a
#             later full run reuses them); the output is labelled QUICK everywhere
#   --out     output folder (default runs/reproduce, or runs/reproduce_quick with --quick)
#   --jobs    trainers at once (default 2)
#   --threads OpenMP threads per trainer (default 1: the wall times in the files are 1 thread each)
#   --only    run only these canonical files (names without .ini), in the order given (so the
#             most wanted finish first); the analysis still reads every sweep folder under DIR/runs
#   --dir     read the sweep files (*.ini) from SWEEPS instead of experiments/canonical, e.g.
#             experiments/lr_window (the lr-window study, issue 26; give it its own --out)
# Environment: STATEX_BIN=path runs that binary instead of building ./build/statex first (e.g. a
# frozen copy, so that a rebuild during a long sweep cannot mix binaries); STATEX_CANONICAL_DIR=dir
# reads the sweep files from dir instead of experiments/canonical (the tests use a tiny one); --dir
# does the same and wins.
# Wall times of each file on the 2-core VM are in its header; rerun the same command to resume.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 out="" jobs=2 threads=1 only="" only_given=0 dir=""
args="$*"
die() { echo "reproduce.sh: $*" >&2; exit 2; }
# Every option that takes a value must get a non-empty one (an option given last used to die on
# an unbound variable; --only '' used to run everything).
value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) value "$@"; out="$2"; shift 2 ;;
    --jobs) value "$@"; jobs="$2"; shift 2 ;;
    --threads) value "$@"; threads="$2"; shift 2 ;;
    --only) value "$@"; only="$2"; only_given=1; shift 2 ;;
    --dir) value "$@"; dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer (got '$jobs')"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer (got '$threads')"
[[ -n "$out" ]] || out=$([[ $quick == 1 ]] && echo runs/reproduce_quick || echo runs/reproduce)
label=$([[ $quick == 1 ]] && echo "QUICK (seeds 0-2)" || echo "full")

canon=${dir:-${STATEX_CANONICAL_DIR:-experiments/canonical}}
[[ -d "$canon" ]] || { echo "reproduce.sh: --dir: no folder $canon" >&2; exit 2; }
files=("$canon"/*.ini)
if [[ $only_given == 1 ]]; then
  files=()
  [[ "$only" != ,* && "$only" != *, && "$only" != *,,* ]] ||
    die "--only '$only': an empty name (names without .ini, separated by commas)"
  IFS=, read -r -a names <<< "$only"
  for name in "${names[@]}"; do
    [[ -f "$canon/$name.ini" ]] || die "--only: no $canon/$name.ini (names without .ini)"
    files+=("$canon/$name.ini")
  done
fi
if [[ -n "${STATEX_BIN:-}" ]]; then
  bin="$STATEX_BIN"
else
  bin=./build/statex
  bash scripts/build.sh statex >/dev/null  # configure + build: the binary's build commit = HEAD
fi
mkdir -p "$out/sweeps" "$out/runs"

# Provenance first, so an interrupted run still says what it ran. An earlier invocation's record
# in the same folder is kept (PROVENANCE.earlier-N.md), never overwritten.
if [[ -f "$out/PROVENANCE.md" ]]; then
  n=1
  while [[ -e "$out/PROVENANCE.earlier-$n.md" ]]; do n=$((n + 1)); done
  mv "$out/PROVENANCE.md" "$out/PROVENANCE.earlier-$n.md"
fi
commit=$(git rev-parse HEAD)
dirty=$([[ -z "$(git status --porcelain --untracked-files=no)" ]] && echo clean || echo dirty)
build=$("$bin" info | awk '$1 == "build" {print $3}' | tr -d ,)
{
  echo "# Reproduction: $label"
  echo
  echo "- command: \`bash scripts/reproduce.sh $args\`"
  echo "- commit: $commit ($dirty working tree)"
  echo "- binary: $bin, build commit $build"
  echo "- sweep files: $canon/"
  echo "- started: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) cores, $jobs trainers at once, $threads thread(s) each"
} > "$out/PROVENANCE.md"

status=0
for f in "${files[@]}"; do
  name=$(basename "$f" .ini)
  sweep="$f"
  if [[ $quick == 1 ]]; then
    # Same base config and seed values, fewer seeds: the trial ids are those of the full file.
    sweep="$out/sweeps/$name.ini"
    sed -E 's/^(grid\.train\.seed[[:space:]]*=).*/\1 0, 1, 2/' "$f" > "$sweep"
    grep -q '^grid\.train\.seed' "$sweep" || { echo "$f: no grid.train.seed axis" >&2; exit 2; }
  fi
  echo "[reproduce] $name ($label)" >&2
  start=$(date +%s)
  OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=passive nice -n 5 \
    "$bin" sweep "$sweep" --out "$out/runs/$name" --jobs "$jobs" --threads-per-job "$threads" || status=1
  echo "- $name: sweep finished in $(( ($(date +%s) - start) / 60 )) min (this invocation)" >> "$out/PROVENANCE.md"
done

python3 -m analysis report "$out"/runs/* --out "$out/report"
# Resumed sweeps may hold trials made by an earlier binary or on another machine: list every
# distinct build and machine found (statex_analysis/provenance.py).
python3 - "$out/runs" >> "$out/PROVENANCE.md" <<'PY'
import sys
from statex_analysis.provenance import machines_markdown, machines_table
print("- result files by build and machine:")
print("\n".join("  " + line for line in machines_markdown(machines_table([sys.argv[1]])).splitlines()))
PY
echo "- finished: $(date -u '+%Y-%m-%d %H:%M UTC')" >> "$out/PROVENANCE.md"
echo "[reproduce] tables and figures in $out/report (provenance: $out/PROVENANCE.md)" >&2
exit $status
