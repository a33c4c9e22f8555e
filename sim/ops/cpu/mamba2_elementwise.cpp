// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias, int N,
                                       int H) {
  throw std::logic_error("cpu op softplus_bias_forward not implemented");
}

void CpuBackend::softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                                        const float* dt_raw, const float* dt_bias, int N, int H) {
  throw std::logic_error("cpu op softplus_bias_backward not implemented");
}

void CpuBackend::gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z,
                                       const float* weight, int N, int C, int group_size,
                                       float eps) {
  throw std::logic_error("cpu op gated_rmsnorm_forward not implemented");
}

void CpuBackend::gated_rmsnorm_backward(float* dy, float* dz, float* dweight, const float* dout,
                                        const float* y, const float* z, const float* weight,
                                        const float* rstd, int N, int C, int group_size) {
  throw std::logic_error("cpu op gated_rmsnorm_backward not implemented");
}

}  // namespace statex
