// Helpers shared by the CPU causal conv ops (conv1d.cpp, conv1d_silu.cpp).
#pragma once

#include <cstddef>
#include <vector>

namespace statex::conv1d_common {

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr size_t kMinParallelWork = size_t(1) << 15;

// weight [C, W] -> [W, C], so inner loops run over contiguous channels.
inline std::vector<float> taps_major(const float* weight, int C, int W) {
  std::vector<float> wt(size_t(W) * C);
  for (int c = 0; c < C; ++c)
    for (int j = 0; j < W; ++j) wt[size_t(j) * C + c] = weight[size_t(c) * W + j];
  return wt;
}

// dweight [C, W] += sum_b pw[b] ([W, C], taps-major), dbias [C] += sum_b pb[b], in b order (so
// the sums do not depend on which thread made which partial). Either output may be nullptr.
inline void add_batch_partials(float* dweight, float* dbias, const std::vector<float>& pw,
                               const std::vector<float>& pb, int B, int C, int W) {
  for (int b = 0; b < B; ++b) {
    if (dweight)
      for (int j = 0; j < W; ++j)
        for (int c = 0; c < C; ++c) dweight[size_t(c) * W + j] += pw[(size_t(b) * W + j) * C + c];
    if (dbias)
      for (int c = 0; c < C; ++c) dbias[c] += pb[size_t(b) * C + c];
  }
}

}  // namespace statex::conv1d_common
