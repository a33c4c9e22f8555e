// Token embedding lookup. Backward scatters rows into dwte with atomicAdd: tokens repeat, so
// several rows may hit one vocab row; the summation order (and the last bits) then vary run to
// run. That is the one non-deterministic op; it only touches the embedding gradient.
#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

// out [N, D] = wte[tokens[i], :]
__global__ void embedding_fwd(float* out, const int* tokens, const float* wte, int N, int D) {
  size_t n = size_t(N) * D;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    size_t r = i / D, d = i % D;
    out[i] = wte[size_t(tokens[r]) * D + d];
  }
}

__global__ void embedding_bwd(float* dwte, const float* dout, const int* tokens, int N, int D) {
  size_t n = size_t(N) * D;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    size_t r = i / D, d = i % D;
    atomicAdd(dwte + size_t(tokens[r]) * D + d, dout[i]);
  }
}

}  // namespace

void CudaBackend::embedding_forward(float* out, const int* tokens, const float* wte, int N,
                                    int D) {
  size_t n = size_t(N) * D;
  if (!n) return;
  embedding_fwd<<<blocks_for(n), kThreads>>>(out, tokens, wte, N, D);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::embedding_backward(float* dwte, const float* dout, const int* tokens, int N,
                                     int D) {
  size_t n = size_t(N) * D;
  if (!n || !dwte) return;
  embedding_bwd<<<blocks_for(n), kThreads>>>(dwte, dout, tokens, N, D);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
