// Causal depthwise conv1d followed by SiLU, the short convs of GLA (q, k, v) and Mamba2 (xBC):
//   act[b,t,c] = silu(pre[b,t,c]),  pre = conv1d(inp) (conv1d.cpp's formula and summation order).
// The conv output `pre` is never stored: the forward writes only act, and the backward
// recomputes pre (W multiply-adds per element) instead of reading a stored copy. Per batch
// element b the backward makes dpre = dact * silu'(pre) for the whole [T, C] slice in a
// thread-local buffer, then dinp, dweight and dbias from it: one pass over dact and inp where
// silu_backward + conv1d_backward made three, and no [B, T, C] dpre in memory.
// Threading: forward over (b, t) rows; backward over b, with per-b dweight/dbias partials added
// in b order, so results do not depend on the thread count.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/conv1d_common.h"

namespace statex {

using namespace conv1d_common;

namespace {

using RowArr = Eigen::Map<Eigen::ArrayXf>;
using ConstRowArr = Eigen::Map<const Eigen::ArrayXf>;

}  // namespace

void CpuBackend::conv1d_silu_forward(float* act, const float* inp, const float* weight,
                                     const float* bias, int B, int T, int C, int W) {
  conv_forward_rows<true>(act, inp, weight, bias, B, T, C, W);
}

void CpuBackend::conv1d_silu_backward(float* dinp, float* dweight, float* dbias, const float* dact,
                                      const float* inp, const float* weight, const float* bias,
                                      int B, int T, int C, int W, bool accumulate) {
  if (!dinp && !dweight && !dbias) return;
  const bool parallel = size_t(B) * T * C * W >= kMinParallelWork;
  const std::vector<float> wt = taps_major(weight, C, W);
  // Per-b partials: [B, W, C] for the weight (taps-major), [B, C] for the bias.
  std::vector<float> pw(dweight ? size_t(B) * C * W : 0, 0.f);
  std::vector<float> pb(dbias ? size_t(B) * C : 0, 0.f);
#pragma omp parallel if (parallel)
  {
    std::vector<float> g(size_t(T) * C);  // [T, C] dpre of one sequence
    Eigen::ArrayXf sig(C);                // sigmoid(pre) of one row (allocated once)
#pragma omp for schedule(static)
    for (int b = 0; b < B; ++b) {
      const float* x0 = inp + size_t(b) * T * C;
      // g = dact * sig (1 + pre (1 - sig)), sig = sigmoid(pre): silu_backward's formula
      for (int t = 0; t < T; ++t) {
        float* gr = g.data() + size_t(t) * C;
        conv_row(gr, x0, t, wt, bias, C, W);
        RowArr pre(gr, C);
        sig = pre.logistic();
        pre = ConstRowArr(dact + (size_t(b) * T + t) * C, C) * sig * (1.f + pre * (1.f - sig));
      }
      if (dinp)
        for (int s = 0; s < T; ++s)
          conv_dinp_row(dinp + (size_t(b) * T + s) * C, g.data(), s, wt, T, C, W, accumulate);
      add_sequence_param_grads(dweight ? pw.data() + size_t(b) * W * C : nullptr,
                               dbias ? pb.data() + size_t(b) * C : nullptr, g.data(), x0, T, C, W);
    }
  }
  add_batch_partials(dweight, dbias, pw, pb, B, C, W);
}

}  // namespace statex
