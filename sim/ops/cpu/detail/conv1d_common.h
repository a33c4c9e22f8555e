// Helpers shared by the CPU causal conv ops (conv1d.cpp, conv1d_silu.cpp).
#pragma once

#include <Eigen/Core>
#include <algorithm>
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

// o [C] = bias + sum_j wt[j] ∘ inp[t-(W-1)+j]: the conv output at time t of one sequence (x0 =
// that sequence's row 0, wt taps-major); taps before the start read the zero padding and are
// skipped. bias may be nullptr.
inline void conv_row(float* o, const float* x0, int t, const std::vector<float>& wt,
                     const float* bias, int C, int W) {
  for (int c = 0; c < C; ++c) o[c] = bias ? bias[c] : 0.f;
  for (int j = std::max(0, W - 1 - t); j < W; ++j) {
    const float* x = x0 + size_t(t - (W - 1) + j) * C;
    const float* w = wt.data() + size_t(j) * C;
    for (int c = 0; c < C; ++c) o[c] += w[c] * x[c];
  }
}

// dx [C] (+)= sum_j wt[j] ∘ dy[s+(W-1)-j]: the input gradient at time s of one sequence (dy0 =
// that sequence's output-gradient row 0); inp[s] feeds the output at s+(W-1)-j through tap j.
inline void conv_dinp_row(float* dx, const float* dy0, int s, const std::vector<float>& wt, int T,
                          int C, int W, bool accumulate) {
  if (!accumulate) std::fill(dx, dx + C, 0.f);  // the row is summed over taps below
  for (int j = 0; j < W; ++j) {
    const int t = s + (W - 1) - j;
    if (t >= T) continue;
    const float* dy = dy0 + size_t(t) * C;
    const float* w = wt.data() + size_t(j) * C;
    for (int c = 0; c < C; ++c) dx[c] += w[c] * dy[c];
  }
}

// One sequence's parameter-gradient partials: pw [W, C] (taps-major) += sum_t dy[t] ∘
// x[t-(W-1)+j] per tap j, pb [C] += sum_t dy[t]; dy0 / x0 are the sequence's output-gradient /
// input row 0. Either partial may be nullptr.
inline void add_sequence_param_grads(float* pw, float* pb, const float* dy0, const float* x0, int T,
                                     int C, int W) {
  for (int t = 0; t < T; ++t) {
    const float* dy = dy0 + size_t(t) * C;
    if (pb)
      for (int c = 0; c < C; ++c) pb[c] += dy[c];
    if (pw)
      for (int j = std::max(0, W - 1 - t); j < W; ++j) {
        const float* x = x0 + size_t(t - (W - 1) + j) * C;
        float* w = pw + size_t(j) * C;
        for (int c = 0; c < C; ++c) w[c] += dy[c] * x[c];
      }
  }
}

// out [B, T, C] = conv(inp), or silu(conv(inp)) with kSilu; threads over (b, t) rows.
template <bool kSilu>
void conv_forward_rows(float* out, const float* inp, const float* weight, const float* bias, int B,
                       int T, int C, int W) {
  const bool parallel = size_t(B) * T * C * W >= kMinParallelWork;
  const std::vector<float> wt = taps_major(weight, C, W);
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      float* o = out + (size_t(b) * T + t) * C;
      conv_row(o, inp + size_t(b) * T * C, t, wt, bias, C, W);
      if (kSilu) {
        Eigen::Map<Eigen::ArrayXf> a(o, C);
        a = a * a.logistic();
      }
    }
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
