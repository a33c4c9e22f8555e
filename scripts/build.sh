#!/usr/bin/env bash
# Configures and builds into ./build (Release). CUDA kernels are built when nvcc is found.
# Usage: scripts/build.sh [target ...]   (default: everything, tests included)
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so worktrees and fresh clones share objects.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"$(nproc)" "${targets[@]}"
