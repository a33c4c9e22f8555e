// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::conv1d_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int B, int T, int C, int W) {
  throw std::logic_error("cpu op conv1d_forward not implemented");
}

void CpuBackend::conv1d_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int B, int T, int C,
                                 int W) {
  throw std::logic_error("cpu op conv1d_backward not implemented");
}

}  // namespace statex
