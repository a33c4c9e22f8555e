// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::linear_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int N, int C, int OC) {
  throw std::logic_error("cpu op linear_forward not implemented");
}

void CpuBackend::linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int N, int C, int OC) {
  throw std::logic_error("cpu op linear_backward not implemented");
}

}  // namespace statex
