// Pass 2 of the deterministic column reduction (see column_sum.cuh).
#include "kernels/detail/column_sum.cuh"

namespace statex::cuda {

__global__ void column_sum_finish_kernel(float* out, const float* partial, int splits, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s = 0.f;
  for (int k = 0; k < splits; ++k) s += partial[size_t(k) * cols + c];
  out[c] += s;
}

}  // namespace statex::cuda
