// Gates of the gated delta rule (CPU twin and formulas: sim/ops/cpu/gated_delta_gate.cpp):
//   g = -exp(A_log[h]) softplus(a_raw + dt_bias[h]),  beta = beta_scale sigmoid(b_raw).
// Elementwise kernels; dA_log and ddt_bias through the deterministic column_sum.
#include "kernels/detail/column_sum.cuh"
#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

// PyTorch softplus (threshold 20) without overflow: max(v, 0) + log1p(exp(-|v|)).
__device__ __forceinline__ float softplusf_(float v) {
  return fmaxf(v, 0.f) + log1pf(expf(-fabsf(v)));
}

__global__ void gate_fwd(float* g, float* beta, const float* a_raw, const float* b_raw,
                         const float* A_log, const float* dt_bias, size_t n, int H,
                         float beta_scale) {
  GRID_STRIDE(i, n) {
    const int h = int(i % H);
    g[i] = -expf(A_log[h]) * softplusf_(a_raw[i] + dt_bias[h]);
    beta[i] = beta_scale * sigmoidf_(b_raw[i]);
  }
}

__global__ void gate_bwd(float* da_raw, float* db_raw, const float* dg, const float* dbeta,
                         const float* a_raw, const float* b_raw, const float* A_log,
                         const float* dt_bias, size_t n, int H, float beta_scale, bool acc) {
  GRID_STRIDE(i, n) {
    const int h = int(i % H);
    if (da_raw)
      store_grad(&da_raw[i], dg ? -dg[i] * expf(A_log[h]) * sigmoidf_(a_raw[i] + dt_bias[h]) : 0.f,
                 acc);
    if (db_raw) {
      const float s = sigmoidf_(b_raw[i]);
      store_grad(&db_raw[i], dbeta ? dbeta[i] * beta_scale * s * (1.f - s) : 0.f, acc);
    }
  }
}

struct ALogGrad {  // dA_log[h] = sum_n dg * g
  const float *dg, *a_raw, *A_log, *dt_bias;
  int H;
  __device__ float operator()(int r, int h) const {
    const size_t i = size_t(r) * H + h;
    return -dg[i] * expf(A_log[h]) * softplusf_(a_raw[i] + dt_bias[h]);
  }
};

struct DtBiasGrad {  // ddt_bias[h] = sum_n dg * (-exp(A_log)) * sigmoid(a_raw + dt_bias)
  const float *dg, *a_raw, *A_log, *dt_bias;
  int H;
  __device__ float operator()(int r, int h) const {
    const size_t i = size_t(r) * H + h;
    return -dg[i] * expf(A_log[h]) * sigmoidf_(a_raw[i] + dt_bias[h]);
  }
};

}  // namespace

void CudaBackend::gated_delta_gate_forward(float* g, float* beta, const float* a_raw,
                                           const float* b_raw, const float* A_log,
                                           const float* dt_bias, int N, int H, float beta_scale) {
  const size_t n = size_t(N) * H;
  if (n == 0) return;
  gate_fwd<<<blocks_for(n), kThreads>>>(g, beta, a_raw, b_raw, A_log, dt_bias, n, H, beta_scale);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::gated_delta_gate_backward(float* da_raw, float* db_raw, float* dA_log,
                                            float* ddt_bias, const float* dg, const float* dbeta,
                                            const float* a_raw, const float* b_raw,
                                            const float* A_log, const float* dt_bias, int N, int H,
                                            float beta_scale, bool accumulate) {
  const size_t n = size_t(N) * H;
  if (n == 0) return;
  if (da_raw || db_raw) {
    gate_bwd<<<blocks_for(n), kThreads>>>(da_raw, db_raw, dg, dbeta, a_raw, b_raw, A_log, dt_bias,
                                          n, H, beta_scale, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  if (!dg) return;
  column_sum(*this, dA_log, N, H, ALogGrad{dg, a_raw, A_log, dt_bias, H});
  column_sum(*this, ddt_bias, N, H, DtBiasGrad{dg, a_raw, A_log, dt_bias, H});
}

}  // namespace statex
