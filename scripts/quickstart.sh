#!/usr/bin/env bash
# Install, build, and train the default experiment (2-layer GLA on MQAR T=64, K=4), then print a
# summary of the HDF5 results. A few minutes on a 2-core laptop-class CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh statex   # the trainer only; scripts/test.sh builds the tests
mkdir -p runs
# --overwrite: rerunning the quickstart replaces its own earlier run (statex never does silently).
./build/statex train --config experiments/quickstart.ini --out runs/quickstart.h5 \
  --checkpoint-out runs/quickstart_ck.h5 --overwrite
python3 -m analysis summary runs/quickstart.h5
