// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::ssd_forward(float* y, float* final_state, const float* x, const float* dt,
                             const float* A_log, const float* Bm, const float* Cm, int B, int T,
                             int H, int P, int G, int N, int chunk) {
  throw std::logic_error("cpu op ssd_forward not implemented");
}

void CpuBackend::ssd_backward(float* dx, float* ddt, float* dA_log, float* dBm, float* dCm,
                              const float* dy, const float* dfinal_state, const float* x,
                              const float* dt, const float* A_log, const float* Bm, const float* Cm,
                              int B, int T, int H, int P, int G, int N, int chunk) {
  throw std::logic_error("cpu op ssd_backward not implemented");
}

void CpuBackend::ssd_dskip_forward(float* y, const float* x, const float* D, int N, int H, int P) {
  throw std::logic_error("cpu op ssd_dskip_forward not implemented");
}

void CpuBackend::ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x,
                                    const float* D, int N, int H, int P) {
  throw std::logic_error("cpu op ssd_dskip_backward not implemented");
}

}  // namespace statex
