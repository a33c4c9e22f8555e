// Row-wise L2 normalisation (fla l2norm; Gated DeltaNet's q and k per head):
// out = inp * rstd, rstd = 1/sqrt(sum(inp^2) + eps); dinp = rstd (dout - (dout . out) out).
// One warp per row; CPU twin: sim/ops/cpu/l2norm.cpp.
#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kRowsPerBlock = 8;

__global__ void l2norm_fwd(float* out, float* rstd, const float* inp, int N, int C, float eps) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* x = inp + size_t(row) * C;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
  const float r = rsqrtf(warp_sum(ss) + eps);
  for (int c = lane; c < C; c += 32) out[size_t(row) * C + c] = x[c] * r;
  if (lane == 0) rstd[row] = r;
}

__global__ void l2norm_bwd(float* dinp, const float* dout, const float* out, const float* rstd,
                           int N, int C, bool acc) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const size_t base = size_t(row) * C;
  float dot = 0.f;
  for (int c = lane; c < C; c += 32) dot += dout[base + c] * out[base + c];
  dot = warp_sum(dot);
  const float r = rstd[row];
  for (int c = lane; c < C; c += 32)
    store_grad(&dinp[base + c], r * (dout[base + c] - dot * out[base + c]), acc);
}

}  // namespace

void CudaBackend::l2norm_forward(float* out, float* rstd, const float* inp, int N, int C,
                                 float eps) {
  if (N <= 0) return;
  l2norm_fwd<<<(N + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock>>>(out, rstd, inp, N, C,
                                                                              eps);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::l2norm_backward(float* dinp, const float* dout, const float* out,
                                  const float* rstd, int N, int C, bool accumulate) {
  if (N <= 0 || !dinp) return;
  l2norm_bwd<<<(N + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock>>>(dinp, dout, out, rstd,
                                                                              N, C, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
