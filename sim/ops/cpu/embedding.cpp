// Token embedding lookup. wte [V, D], tokens [N], out/dout [N, D].
#include <cstring>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

// out[i, :] = wte[tokens[i], :]; rows are independent.
void CpuBackend::embedding_forward(float* out, const int* tokens, const float* wte, int N, int D) {
  const bool parallel = (long long)N * D >= (1 << 15);
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < N; ++i)
    std::memcpy(out + (size_t)i * D, wte + (size_t)tokens[i] * D, sizeof(float) * D);
}

// dwte[tokens[i], :] += dout[i, :]. Repeated tokens hit the same row, so rows are added serially
// in i order (deterministic, race free); the parallelism is over column blocks of D instead.
void CpuBackend::embedding_backward(float* dwte, const float* dout, const int* tokens, int N,
                                    int D) {
  if (!dwte) return;
  constexpr int kColBlock = 64;  // columns per task; each task owns its columns of every row
  const int blocks = (D + kColBlock - 1) / kColBlock;
  const bool parallel = blocks > 1 && (long long)N * D >= (1 << 16);
#pragma omp parallel for schedule(static) if (parallel)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kColBlock;
    const int c1 = c0 + kColBlock < D ? c0 + kColBlock : D;
    for (int i = 0; i < N; ++i) {
      float* d = dwte + (size_t)tokens[i] * D;
      const float* s = dout + (size_t)i * D;
      for (int c = c0; c < c1; ++c) d[c] += s[c];
    }
  }
}

}  // namespace statex
