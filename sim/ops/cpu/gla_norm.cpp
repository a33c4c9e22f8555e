// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::rmsnorm_swish_gate_forward(float* out, float* rstd, const float* x, const float* g,
                                            const float* weight, int N, int C, float eps) {
  throw std::logic_error("cpu op rmsnorm_swish_gate_forward not implemented");
}

void CpuBackend::rmsnorm_swish_gate_backward(float* dx, float* dg, float* dweight,
                                             const float* dout, const float* x, const float* g,
                                             const float* weight, const float* rstd, int N, int C) {
  throw std::logic_error("cpu op rmsnorm_swish_gate_backward not implemented");
}

}  // namespace statex
