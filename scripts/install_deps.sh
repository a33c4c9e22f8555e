#!/usr/bin/env bash
# Installs what statex-sim needs on a fresh Debian 12 machine: the C++ toolchain and libraries
# from Debian, and the Python analysis dependencies from PyPI. Safe to re-run.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake git libeigen3-dev libopenblas-dev libboost-program-options-dev libhdf5-dev
      hdf5-tools
      libgtest-dev python3 python3-pip ccache)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Python analysis package (h5py, numpy, pandas, matplotlib, pytest), pinned minimums.
PIP_FLAGS=(-q --disable-pip-version-check)
# Debian's system Python refuses global installs (PEP 668); allow it for this user-level tool.
if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
  if [ -f /usr/lib/python3*/EXTERNALLY-MANAGED ] 2>/dev/null && [ -z "${VIRTUAL_ENV:-}" ]; then
    PIP_FLAGS+=(--break-system-packages)
  fi
fi
python3 -m pip install "${PIP_FLAGS[@]}" -r "$(dirname "$0")/../analysis/requirements.txt"
