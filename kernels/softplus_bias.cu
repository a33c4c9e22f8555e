// Mamba2 dt: dt = softplus(dt_raw + dt_bias) per head.
#include <stdexcept>

#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

// softplus with PyTorch's threshold: x > 20 returns x (log1p(exp(x)) == x in fp32 there).
__device__ __forceinline__ float softplusf_(float x) { return x > 20.f ? x : log1pf(expf(x)); }

__global__ void softplus_bias_fwd(float* dt, const float* dt_raw, const float* dt_bias, int N,
                                  int H) {
  size_t n = size_t(N) * H;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    dt[i] = softplusf_(dt_raw[i] + dt_bias[i % H]);
}

// d softplus / dx = sigmoid(x) (also beyond the threshold, where it is 1 to fp32 precision)
__global__ void softplus_bias_bwd(float* ddt_raw, const float* ddt, const float* dt_raw,
                                  const float* dt_bias, int N, int H, bool acc) {
  size_t n = size_t(N) * H;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    store_grad(&ddt_raw[i], ddt[i] * sigmoidf_(dt_raw[i] + dt_bias[i % H]), acc);
}

struct SoftplusBiasGrad {
  const float *ddt, *dt_raw, *dt_bias;
  int H;
  __device__ float operator()(int r, int h) const {
    size_t i = size_t(r) * H + h;
    return ddt[i] * sigmoidf_(dt_raw[i] + dt_bias[h]);
  }
};

}  // namespace

void CudaBackend::softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias, int N,
                                        int H) {
  size_t n = size_t(N) * H;
  if (!n) return;
  softplus_bias_fwd<<<blocks_for(n), kThreads>>>(dt, dt_raw, dt_bias, N, H);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                                         const float* dt_raw, const float* dt_bias, int N, int H,
                                         bool accumulate) {
  size_t n = size_t(N) * H;
  if (!n) return;
  if (ddt_raw) {
    softplus_bias_bwd<<<blocks_for(n), kThreads>>>(ddt_raw, ddt, dt_raw, dt_bias, N, H, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, ddt_bias, N, H, SoftplusBiasGrad{ddt, dt_raw, dt_bias, H});
}

}  // namespace statex
