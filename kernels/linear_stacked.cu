// Several bias-free projections of one input with stacked weights (linear_stacked_*), as one
// linear op per part (linear.cu).
#include "kernels/cuda_backend.h"

namespace statex {

// Stacked projections on the GPU: one GEMM per part (each already a full-device launch; the
// CPU path fuses them to save passes over memory, which the GPU GEMM does not need here).
void CudaBackend::linear_stacked_forward(float* const* outs, const int* ocs, int parts,
                                         const float* inp, const float* weight, int N, int C) {
  for (int i = 0, row = 0; i < parts; row += ocs[i], ++i)
    linear_forward(outs[i], inp, weight + size_t(row) * C, nullptr, N, C, ocs[i]);
}

void CudaBackend::linear_stacked_backward(float* dinp, float* dweight, const float* const* douts,
                                          const int* ocs, int parts, const float* inp,
                                          const float* weight, int N, int C, bool accumulate) {
  for (int i = 0, row = 0; i < parts; row += ocs[i], ++i)
    linear_backward(dinp, dweight ? dweight + size_t(row) * C : nullptr, nullptr, douts[i], inp,
                    weight + size_t(row) * C, N, C, ocs[i], accumulate || i > 0);
}

}  // namespace statex
