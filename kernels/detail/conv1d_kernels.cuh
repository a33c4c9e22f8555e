#pragma once
// Shared by conv1d.cu and conv1d_silu.cu: the causal depthwise conv at one output element and
// the forward kernel (plain, or followed by SiLU).
#include "kernels/detail/cuda_common.cuh"

namespace statex {
namespace {
using namespace cuda;

// The conv output at flat index i = (b*T + t)*C + c.
__device__ __forceinline__ float conv_at(size_t i, const float* inp, const float* weight,
                                         const float* bias, int T, int C, int W) {
  int c = int(i % C);
  size_t bt = i / C;
  int t = int(bt % T);
  size_t row0 = bt - t;  // b * T
  float acc = bias ? bias[c] : 0.f;
  for (int j = 0; j < W; ++j) {
    int ts = t - (W - 1) + j;
    if (ts >= 0) acc += weight[size_t(c) * W + j] * inp[(row0 + ts) * C + c];
  }
  return acc;
}

// out = conv(inp), or silu(conv(inp)) with kSilu.
template <bool kSilu>
__global__ void conv1d_fwd(float* out, const float* inp, const float* weight, const float* bias,
                           int B, int T, int C, int W) {
  size_t n = size_t(B) * T * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float pre = conv_at(i, inp, weight, bias, T, C, W);
    out[i] = kSilu ? pre * sigmoidf_(pre) : pre;
  }
}

}  // namespace
}  // namespace statex
