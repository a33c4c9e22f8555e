// Mamba2 gated group RMSNorm (norm after gate): u = y * silu(z), out = u * rstd_group * weight.
#include <stdexcept>

#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

__device__ __forceinline__ float siluf_(float z) { return z * sigmoidf_(z); }

constexpr int kWarpsPerBlock = 8;

// One warp per (row, group).
__global__ void gated_rmsnorm_fwd(float* out, float* rstd, const float* y, const float* z,
                                  const float* weight, int N, int C, int gs, float eps) {
  int groups = C / gs;
  long long wid = (long long)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (wid >= (long long)N * groups) return;
  int row = int(wid / groups), grp = int(wid % groups);
  size_t base = size_t(row) * C + size_t(grp) * gs;
  float ss = 0.f;
  for (int c = lane; c < gs; c += 32) {
    float u = y[base + c] * siluf_(z[base + c]);
    ss += u * u;
  }
  ss = warp_sum(ss);
  float r = rsqrtf(ss / gs + eps);
  for (int c = lane; c < gs; c += 32) {
    float u = y[base + c] * siluf_(z[base + c]);
    out[base + c] = u * r * weight[grp * gs + c];
  }
  if (lane == 0 && rstd) rstd[size_t(row) * groups + grp] = r;
}

// gu = dout w; du = r (gu - n mean(gu n)), n = u r; dy (+)= du silu(z); dz (+)= du y silu'(z)
__global__ void gated_rmsnorm_bwd(float* dy, float* dz, const float* dout, const float* y,
                                  const float* z, const float* weight, const float* rstd, int N,
                                  int C, int gs, bool acc) {
  int groups = C / gs;
  long long wid = (long long)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (wid >= (long long)N * groups) return;
  int row = int(wid / groups), grp = int(wid % groups);
  size_t base = size_t(row) * C + size_t(grp) * gs;
  float r = rstd[size_t(row) * groups + grp];
  float s = 0.f;
  for (int c = lane; c < gs; c += 32) {
    float u = y[base + c] * siluf_(z[base + c]);
    s += dout[base + c] * weight[grp * gs + c] * u * r;
  }
  s = warp_sum(s) / gs;
  for (int c = lane; c < gs; c += 32) {
    float zv = z[base + c], sz = sigmoidf_(zv), yv = y[base + c];
    float u = yv * zv * sz;
    float du = r * (dout[base + c] * weight[grp * gs + c] - u * r * s);
    if (dy) store_grad(&dy[base + c], du * zv * sz, acc);
    if (dz) store_grad(&dz[base + c], du * yv * sz * (1.f + zv * (1.f - sz)), acc);
  }
}

struct GatedNormWeightGrad {  // dweight[c] = sum_r dout * u * rstd_group
  const float *dout, *y, *z, *rstd;
  int C, gs;
  __device__ float operator()(int r, int c) const {
    size_t i = size_t(r) * C + c;
    return dout[i] * y[i] * siluf_(z[i]) * rstd[size_t(r) * (C / gs) + c / gs];
  }
};

}  // namespace

void CudaBackend::gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z,
                                        const float* weight, int N, int C, int group_size,
                                        float eps) {
  if (N <= 0) return;
  if (group_size <= 0 || C % group_size != 0)
    throw std::invalid_argument("gated_rmsnorm: C must be a multiple of group_size");
  size_t warps = size_t(N) * (C / group_size);
  gated_rmsnorm_fwd<<<unsigned((warps + kWarpsPerBlock - 1) / kWarpsPerBlock),
                      32 * kWarpsPerBlock>>>(out, rstd, y, z, weight, N, C, group_size, eps);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::gated_rmsnorm_backward(float* dy, float* dz, float* dweight, const float* dout,
                                         const float* y, const float* z, const float* weight,
                                         const float* rstd, int N, int C, int group_size,
                                         bool accumulate) {
  if (N <= 0) return;
  if (group_size <= 0 || C % group_size != 0)
    throw std::invalid_argument("gated_rmsnorm: C must be a multiple of group_size");
  if (dy || dz) {
    size_t warps = size_t(N) * (C / group_size);
    gated_rmsnorm_bwd<<<unsigned((warps + kWarpsPerBlock - 1) / kWarpsPerBlock),
                        32 * kWarpsPerBlock>>>(dy, dz, dout, y, z, weight, rstd, N, C, group_size,
                                               accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, dweight, N, C, GatedNormWeightGrad{dout, y, z, rstd, C, group_size});
}

}  // namespace statex
