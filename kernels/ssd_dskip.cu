// Mamba2 D skip: y [N, H, P] += D[h] x; dx (+)= D[h] dy, dD[h] += sum dy x.
#include "kernels/cuda_backend.h"
#include "kernels/detail/column_sum.cuh"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

__global__ void dskip_fwd(float* y, const float* x, const float* D, size_t NH, int H, int P) {
  GRID_STRIDE(i, NH * P) { y[i] += D[(i / P) % H] * x[i]; }
}

__global__ void dskip_bwd_x(float* dx, const float* dy, const float* D, size_t NH, int H, int P,
                            bool acc) {
  GRID_STRIDE(i, NH * P) { store_grad(&dx[i], D[(i / P) % H] * dy[i], acc); }
}

struct DskipGrad {  // column h: sum_{n,p} dy x
  const float *dy, *x;
  int H, P;
  __device__ float operator()(int r, int h) const {
    size_t base = (size_t(r) * H + h) * P;
    float s = 0.f;
    for (int p = 0; p < P; ++p) s += dy[base + p] * x[base + p];
    return s;
  }
};

}  // namespace

void CudaBackend::ssd_dskip_forward(float* y, const float* x, const float* D, int N, int H, int P) {
  size_t n = size_t(N) * H * P;
  if (!n) return;
  dskip_fwd<<<blocks_for(n), kThreads>>>(y, x, D, size_t(N) * H, H, P);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x,
                                     const float* D, int N, int H, int P, bool accumulate) {
  size_t n = size_t(N) * H * P;
  if (!n) return;
  if (dx) {
    dskip_bwd_x<<<blocks_for(n), kThreads>>>(dx, dy, D, size_t(N) * H, H, P, accumulate);
    CUDA_CHECK_LAUNCH();
  }
  column_sum(*this, dD, N, H, DskipGrad{dy, x, H, P});
}

}  // namespace statex
