// Optimiser ops: global grad-norm helper and AdamW.
#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
constexpr long long kBlock = 1 << 15;  // elements per partial sum / per parallel task
}

// Sum of squares in double. Fixed-size blocks are summed in parallel and the block sums are
// added in block order, so the result is bit-identical for any thread count.
double CpuBackend::sum_squares(const float* x, size_t n) {
  const long long len = (long long)n;
  const long long blocks = (len + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (long long b = 0; b < blocks; ++b) {
    const long long end = (b + 1) * kBlock < len ? (b + 1) * kBlock : len;
    double s = 0;
    for (long long i = b * kBlock; i < end; ++i) s += double(x[i]) * double(x[i]);
    partial[b] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
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
