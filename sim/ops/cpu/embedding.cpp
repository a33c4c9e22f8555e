// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::embedding_forward(float* out, const int* tokens, const float* wte, int N, int D) {
  throw std::logic_error("cpu op embedding_forward not implemented");
}

void CpuBackend::embedding_backward(float* dwte, const float* dout, const int* tokens, int N,
                                    int D) {
  throw std::logic_error("cpu op embedding_backward not implemented");
}

}  // namespace statex
