// The causal depthwise conv1d followed by SiLU: act = silu(conv1d(inp)) (conv1d.cu for the conv).
#include "kernels/cuda_backend.h"
#include "kernels/detail/conv1d_kernels.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kDpreWorkspaceSlot = 10;  // [B, T, C] dpre; not column_sum's slot (9)

// dpre = dact * silu'(pre), pre recomputed from inp (d silu / dx = s (1 + x (1 - s))).
__global__ void conv1d_silu_dpre(float* dpre, const float* dact, const float* inp,
                                 const float* weight, const float* bias, int B, int T, int C,
                                 int W) {
  size_t n = size_t(B) * T * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float x = conv_at(i, inp, weight, bias, T, C, W), s = sigmoidf_(x);
    dpre[i] = dact[i] * s * (1.f + x * (1.f - s));
  }
}

}  // namespace

// The fused conv + SiLU: one kernel forward; backward makes dpre (recomputing the conv) in a
// workspace, then runs conv1d_backward on it.
void CudaBackend::conv1d_silu_forward(float* act, const float* inp, const float* weight,
                                      const float* bias, int B, int T, int C, int W) {
  size_t n = size_t(B) * T * C;
  if (!n) return;
  conv1d_fwd<true><<<blocks_for(n), kThreads>>>(act, inp, weight, bias, B, T, C, W);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::conv1d_silu_backward(float* dinp, float* dweight, float* dbias, const float* dact,
                                       const float* inp, const float* weight, const float* bias,
                                       int B, int T, int C, int W, bool accumulate) {
  size_t n = size_t(B) * T * C;
  if (!n) return;
  float* dpre = workspace(kDpreWorkspaceSlot, n);
  conv1d_silu_dpre<<<blocks_for(n), kThreads>>>(dpre, dact, inp, weight, bias, B, T, C, W);
  CUDA_CHECK_LAUNCH();
  conv1d_backward(dinp, dweight, dbias, dpre, inp, weight, B, T, C, W, accumulate);
}

}  // namespace statex
