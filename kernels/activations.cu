// Elementwise activations: SiLU, scaled log-sigmoid (GLA forget gate) and SwiGLU.
// Forward overwrites; backward adds into or overwrites dinp per `acc` (sim/core/ops.def).
#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

__global__ void silu_fwd(float* out, const float* inp, size_t n) {
  GRID_STRIDE(i, n) {
    float x = inp[i];
    out[i] = x * sigmoidf_(x);
  }
}

// d silu / dx = s (1 + x (1 - s)), s = sigmoid(x)
__global__ void silu_bwd(float* dinp, const float* dout, const float* inp, size_t n, bool acc) {
  GRID_STRIDE(i, n) {
    float x = inp[i], s = sigmoidf_(x);
    store_grad(&dinp[i], dout[i] * s * (1.f + x * (1.f - s)), acc);
  }
}

// logsigmoid(x) = min(x, 0) - log1p(exp(-|x|)): no overflow for any x.
__global__ void logsigmoid_fwd(float* out, const float* inp, float scale, size_t n) {
  GRID_STRIDE(i, n) {
    float x = inp[i];
    out[i] = scale * (fminf(x, 0.f) - log1pf(expf(-fabsf(x))));
  }
}

// d logsigmoid / dx = sigmoid(-x)
__global__ void logsigmoid_bwd(float* dinp, const float* dout, const float* inp, float scale,
                               size_t n, bool acc) {
  GRID_STRIDE(i, n) { store_grad(&dinp[i], dout[i] * scale * sigmoidf_(-inp[i]), acc); }
}

__global__ void swiglu_fwd(float* out, const float* gate, const float* up, size_t n) {
  GRID_STRIDE(i, n) {
    float g = gate[i];
    out[i] = g * sigmoidf_(g) * up[i];
  }
}

__global__ void swiglu_bwd(float* dgate, float* dup, const float* dout, const float* gate,
                           const float* up, size_t n, bool acc) {
  GRID_STRIDE(i, n) {
    float g = gate[i], s = sigmoidf_(g), d = dout[i];
    if (dgate) store_grad(&dgate[i], d * up[i] * s * (1.f + g * (1.f - s)), acc);
    if (dup) store_grad(&dup[i], d * g * s, acc);
  }
}

}  // namespace

void CudaBackend::silu_forward(float* out, const float* inp, size_t n) {
  if (!n) return;
  silu_fwd<<<blocks_for(n), kThreads>>>(out, inp, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::silu_backward(float* dinp, const float* dout, const float* inp, size_t n,
                                bool accumulate) {
  if (!n || !dinp) return;
  silu_bwd<<<blocks_for(n), kThreads>>>(dinp, dout, inp, n, accumulate);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::logsigmoid_forward(float* out, const float* inp, float scale, size_t n) {
  if (!n) return;
  logsigmoid_fwd<<<blocks_for(n), kThreads>>>(out, inp, scale, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::logsigmoid_backward(float* dinp, const float* dout, const float* inp, float scale,
                                      size_t n, bool accumulate) {
  if (!n || !dinp) return;
  logsigmoid_bwd<<<blocks_for(n), kThreads>>>(dinp, dout, inp, scale, n, accumulate);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  if (!n) return;
  swiglu_fwd<<<blocks_for(n), kThreads>>>(out, gate, up, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                                  const float* up, size_t n, bool accumulate) {
  if (!n || (!dgate && !dup)) return;
  swiglu_bwd<<<blocks_for(n), kThreads>>>(dgate, dup, dout, gate, up, n, accumulate);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
