// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

double CpuBackend::sum_squares(const float* x, size_t n) {
  throw std::logic_error("cpu op sum_squares not implemented");
}

void CpuBackend::adamw_update(float* param, const float* grad, float* m, float* v, size_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay,
                              int step, float grad_scale) {
  throw std::logic_error("cpu op adamw_update not implemented");
}

}  // namespace statex
