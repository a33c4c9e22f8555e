#!/usr/bin/env bash
# Builds the CUDA-enabled binaries on THIS machine (needs nvcc, no GPU) for a generic x86-64-v3
# host and packs them, with the shared libraries they need beyond glibc, into .gpu/ for
# scripts/gpu_session.sh on a GPU host that cannot build the project.
# The portable flavour (x86-64-v3, no OpenBLAS: the CPU path uses Eigen's GEMM): the
# DYNAMIC_ARCH libopenblas alone is 36 MB and would push the pack past the device tool's 64 MiB
# carry limit. The CPU side on the GPU host is the verification reference, not a benchmark target.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSTATEX_FLAVOUR=portable \
  -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build build-gpu -j"$(nproc)" --target statex test_cuda_ops
rm -rf .gpu && mkdir -p .gpu/lib
cp build-gpu/statex build-gpu/test_cuda_ops .gpu/
for bin in .gpu/statex .gpu/test_cuda_ops; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -r -I{} cp -Ln {} .gpu/lib/
done
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
du -sh .gpu
size=$(du -sb .gpu | cut -f1)
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
  echo "gpu_pack: .gpu is $((size / 1024 / 1024)) MiB, over the 60 MiB budget for the device carry" >&2
  exit 1
fi
