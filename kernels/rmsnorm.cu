// RMSNorm: out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps). One warp per row.
#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kRowsPerBlock = 8;  // 8 warps of 32 = 256 threads, one row each

__global__ void rmsnorm_fwd(float* out, float* rstd, const float* inp, const float* weight, int N,
                            int C, float eps) {
  int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warp leaves together
  const float* x = inp + size_t(row) * C;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
  ss = warp_sum(ss);
  float r = rsqrtf(ss / C + eps);
  float* o = out + size_t(row) * C;
  for (int c = lane; c < C; c += 32) o[c] = x[c] * r * weight[c];
  if (lane == 0 && rstd) rstd[row] = r;
}

// dinp (+)= r * (g - x r^2 mean(g x)), g = dout * weight
__global__ void rmsnorm_bwd_inp(float* dinp, const float* dout, const float* inp,
                                const float* weight, const float* rstd, int N, int C, bool acc) {
  int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* x = inp + size_t(row) * C;
  const float* d = dout + size_t(row) * C;
  float r = rstd[row];
  float s = 0.f;
  for (int c = lane; c < C; c += 32) s += d[c] * weight[c] * x[c];
  s = warp_sum(s);
  float coef = r * r * s / C;
  float* dx = dinp + size_t(row) * C;
  for (int c = lane; c < C; c += 32) store_grad(&dx[c], r * (d[c] * weight[c] - x[c] * coef), acc);
}

struct RmsnormWeightGrad {  // dweight[c] = sum_r dout[r,c] * inp[r,c] * rstd[r]
  const float *dout, *inp, *rstd;
  int C;
  __device__ float operator()(int r, int c) const {
    size_t i = size_t(r) * C + c;
    return dout[i] * inp[i] * rstd[r];
  }
};

}  // namespace

void CudaBackend::rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                                  int N, int C, float eps) {
  if (N <= 0) return;
  rmsnorm_fwd<<<(N + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock>>>(out, rstd, inp,
                                                                              weight, N, C, eps);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                   const float* weight, const float* rstd, int N, int C,
                                   bool accumulate) {
  if (N <= 0) return;
  if (dinp) {
    rmsnorm_bwd_inp<<<(N + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock>>>(
        dinp, dout, inp, weight, rstd, N, C, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, dweight, N, C, RmsnormWeightGrad{dout, inp, rstd, C});
}

}  // namespace statex
