// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::gla_forward(float* o, float* final_state, const float* q, const float* k,
                             const float* v, const float* gk, int B, int T, int H, int K, int V,
                             float scale, int chunk) {
  throw std::logic_error("cpu op gla_forward not implemented");
}

void CpuBackend::gla_backward(float* dq, float* dk, float* dv, float* dgk, const float* dout,
                              const float* dfinal_state, const float* q, const float* k,
                              const float* v, const float* gk, int B, int T, int H, int K, int V,
                              float scale, int chunk) {
  throw std::logic_error("cpu op gla_backward not implemented");
}

}  // namespace statex
