// AdamW with PyTorch semantics (decoupled weight decay), one thread per parameter.
#include <cmath>

#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

// p -= lr (wd p + mhat / (sqrt(vhat) + eps)); bias corrections precomputed on the host.
__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, size_t n,
                             float lr, float beta1, float beta2, float eps, float wd,
                             float bc1, float bc2, float grad_scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float g = grad[i] * grad_scale;
    float mi = beta1 * m[i] + (1.f - beta1) * g;
    float vi = beta2 * v[i] + (1.f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float mhat = mi / bc1, vhat = vi / bc2;
    float p = param[i];
    param[i] = p - lr * (wd * p + mhat / (sqrtf(vhat) + eps));
  }
}

}  // namespace

void CudaBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                               float lr, float beta1, float beta2, float eps, float weight_decay,
                               int step, float grad_scale) {
  if (!n) return;
  // Bias corrections in double on the host (step can be large; pow in float loses digits).
  float bc1 = float(1.0 - std::pow(double(beta1), double(step)));
  float bc2 = float(1.0 - std::pow(double(beta2), double(step)));
  adamw_kernel<<<blocks_for(n), kThreads>>>(param, grad, m, v, n, lr, beta1, beta2, eps,
                                            weight_decay, bc1, bc2, grad_scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
