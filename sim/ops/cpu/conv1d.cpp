// Causal depthwise conv1d on the CPU (Mamba2's xBC conv, GLA's ShortConvolution).
// out[b,t,c] = bias[c] + sum_{j<W} weight[c,j] * inp[b, t-(W-1)+j, c], zero left padding.
// inp/out [B, T, C], weight [C, W] (PyTorch conv1d.weight [C,1,W] squeezed), bias [C] or nullptr.
//
// Layout: the weight is transposed to [W, C] (and dweight accumulated as [W, C]) so every inner
// loop runs over contiguous channels and vectorises; per element the arithmetic order is that of
// the plain formula.
// Threading: forward and dinp over (b, t) rows. dweight/dbias are reductions over all B*T rows:
// each batch element b gets its own partial buffer (one thread writes it) and the partials are
// added in b order, so the result does not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/conv1d_common.h"

namespace statex {
using namespace conv1d_common;

void CpuBackend::conv1d_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int B, int T, int C, int W) {
  conv_forward_rows<false>(out, inp, weight, bias, B, T, C, W);
}

void CpuBackend::conv1d_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int B, int T, int C, int W,
                                 bool accumulate) {
  const bool parallel = size_t(B) * T * C * W >= kMinParallelWork;
  if (dinp) {
    const std::vector<float> wt = taps_major(weight, C, W);
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
    for (int b = 0; b < B; ++b)
      for (int s = 0; s < T; ++s)
        conv_dinp_row(dinp + (size_t(b) * T + s) * C, dout + size_t(b) * T * C, s, wt, T, C, W,
                      accumulate);
  }
  if (dweight || dbias) {
    // Per-b partials: [B, W, C] for the weight (taps-major), [B, C] for the bias.
    std::vector<float> pw(dweight ? size_t(B) * C * W : 0, 0.f);
    std::vector<float> pb(dbias ? size_t(B) * C : 0, 0.f);
#pragma omp parallel for schedule(static) if (parallel)
    for (int b = 0; b < B; ++b)
      add_sequence_param_grads(dweight ? pw.data() + size_t(b) * W * C : nullptr,
                               dbias ? pb.data() + size_t(b) * C : nullptr,
                               dout + size_t(b) * T * C, inp + size_t(b) * T * C, T, C, W);
    add_batch_partials(dweight, dbias, pw, pb, B, C, W);
  }
}

}  // namespace statex
