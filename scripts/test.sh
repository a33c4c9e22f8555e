#!/usr/bin/env bash
# The whole test suite: builds, then runs every GoogleTest (ctest, labels cpu and cuda; cuda tests
# skip without a GPU) and the Python tests (analysis, PyTorch parity when torch is installed).
# Slurm tests run when STATEX_SLURM_CONF points at a running Slurm (see tests/slurm/start.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh   # no-op when everything is there
bash scripts/build.sh
status=0
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600) || status=1
export STATEX_BIN="$PWD/build/statex"
python3 -m pytest -q tests/python tests/torch || status=1
exit $status
