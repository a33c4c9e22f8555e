// STUB: to be implemented (see sim/core/backend.h for the contract).
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

void CpuBackend::softmax_xent_forward(float* losses, float* probs, int* pred, const float* logits,
                                      const int* targets, int M, int V) {
  throw std::logic_error("cpu op softmax_xent_forward not implemented");
}

void CpuBackend::softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                                       float dloss_scale, int M, int V) {
  throw std::logic_error("cpu op softmax_xent_backward not implemented");
}

}  // namespace statex
