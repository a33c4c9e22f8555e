// GLA output norm (fla FusedRMSNormSwishGate): out = x * rstd * weight * swish(g),
// swish(g) = g * sigmoid(g); rows of C = head dim. One warp per row.
#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

constexpr int kRowsPerBlock = 8;

__global__ void swish_gate_fwd(float* out, float* rstd, const float* x, const float* g,
                               const float* weight, int N, int C, float eps) {
  int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= N) return;
  const float* xr = x + size_t(row) * C;
  const float* gr = g + size_t(row) * C;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) ss += xr[c] * xr[c];
  ss = warp_sum(ss);
  float r = rsqrtf(ss / C + eps);
  float* o = out + size_t(row) * C;
  for (int c = lane; c < C; c += 32) {
    float gv = gr[c];
    o[c] = xr[c] * r * weight[c] * gv * sigmoidf_(gv);
  }
  if (lane == 0 && rstd) rstd[row] = r;
}

// n = x r (normalised), out = n w swish(g).
// dg (+)= dout n w swish'(g); dx (+)= r (gy - n mean(gy n)), gy = dout swish(g) w.
__global__ void swish_gate_bwd(float* dx, float* dg, const float* dout, const float* x,
                               const float* g, const float* weight, const float* rstd, int N, int C,
                               bool acc) {
  int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= N) return;
  size_t base = size_t(row) * C;
  float r = rstd[row];
  float s = 0.f;
  for (int c = lane; c < C; c += 32) {
    float gv = g[base + c], sg = sigmoidf_(gv);
    float n = x[base + c] * r;
    float gy = dout[base + c] * gv * sg * weight[c];
    s += gy * n;
    if (dg)
      store_grad(&dg[base + c], dout[base + c] * n * weight[c] * sg * (1.f + gv * (1.f - sg)), acc);
  }
  if (!dx) return;
  s = warp_sum(s) / C;
  for (int c = lane; c < C; c += 32) {
    float gv = g[base + c];
    float n = x[base + c] * r;
    float gy = dout[base + c] * gv * sigmoidf_(gv) * weight[c];
    store_grad(&dx[base + c], r * (gy - n * s), acc);
  }
}

struct SwishGateWeightGrad {  // dweight[c] = sum_r dout * x r * swish(g)
  const float *dout, *x, *g, *rstd;
  int C;
  __device__ float operator()(int r, int c) const {
    size_t i = size_t(r) * C + c;
    float gv = g[i];
    return dout[i] * x[i] * rstd[r] * gv * sigmoidf_(gv);
  }
};

}  // namespace

void CudaBackend::gla_norm_forward(float* out, float* rstd, const float* x, const float* g,
                                   const float* weight, int N, int C, float eps) {
  if (N <= 0) return;
  swish_gate_fwd<<<(N + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock>>>(
      out, rstd, x, g, weight, N, C, eps);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::gla_norm_backward(float* dx, float* dg, float* dweight, const float* dout,
                                    const float* x, const float* g, const float* weight,
                                    const float* rstd, int N, int C, bool accumulate) {
  if (N <= 0) return;
  if (dx || dg) {
    swish_gate_bwd<<<(N + kRowsPerBlock - 1) / kRowsPerBlock, 32 * kRowsPerBlock>>>(
        dx, dg, dout, x, g, weight, rstd, N, C, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, dweight, N, C, SwishGateWeightGrad{dout, x, g, rstd, C});
}

}  // namespace statex
