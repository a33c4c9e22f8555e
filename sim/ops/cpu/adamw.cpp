// AdamW (torch.optim.AdamW semantics) on the CPU. Contract: sim/core/ops.def.
#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
constexpr long long kBlock = 1 << 15;  // elements per parallel task
}

// PyTorch AdamW (torch.optim.AdamW, amsgrad=False, maximize=False), written the way its
// single-tensor path computes it:
//   g = grad * grad_scale
//   p *= 1 - lr * wd                      (decoupled weight decay, uses the old p)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - b_k^step
// which equals p -= lr (wd p + mhat / (sqrt(vhat) + eps)) in exact arithmetic.
void CpuBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay,
                              int step, float grad_scale) {
  const double bc1 = 1.0 - std::pow(double(beta1), step);
  const double bc2 = 1.0 - std::pow(double(beta2), step);
  const float step_size = float(double(lr) / bc1);
  const float inv_bc2_sqrt = float(1.0 / std::sqrt(bc2));
  const float decay = float(1.0 - double(lr) * double(weight_decay));
  const float one_minus_b1 = 1.f - beta1, one_minus_b2 = 1.f - beta2;
  const long long len = (long long)n;
#pragma omp parallel for simd schedule(static) if (len >= kBlock)
  for (long long i = 0; i < len; ++i) {
    const float g = grad[i] * grad_scale;
    const float mi = beta1 * m[i] + one_minus_b1 * g;
    const float vi = beta2 * v[i] + one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (std::sqrt(vi) * inv_bc2_sqrt + eps);
  }
}

}  // namespace statex
