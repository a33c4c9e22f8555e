// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::silu_forward(float* out, const float* inp, size_t n) {
  throw std::logic_error("cpu op silu_forward not implemented");
}

void CpuBackend::silu_backward(float* dinp, const float* dout, const float* inp, size_t n) {
  throw std::logic_error("cpu op silu_backward not implemented");
}

void CpuBackend::logsigmoid_forward(float* out, const float* inp, float scale, size_t n) {
  throw std::logic_error("cpu op logsigmoid_forward not implemented");
}

void CpuBackend::logsigmoid_backward(float* dinp, const float* dout, const float* inp, float scale,
                                     size_t n) {
  throw std::logic_error("cpu op logsigmoid_backward not implemented");
}

void CpuBackend::swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  throw std::logic_error("cpu op swiglu_forward not implemented");
}

void CpuBackend::swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                                 const float* up, size_t n) {
  throw std::logic_error("cpu op swiglu_backward not implemented");
}

}  // namespace statex
