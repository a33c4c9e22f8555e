// Rotary position embedding (fla RotaryEmbedding, rotate-half form; sim/ops/cpu/rope.cpp has the
// formula). One thread per (token, head, pair i < Dh/2); the angle t theta^(-2i/Dh) is computed
// in double, as on the CPU, so both backends rotate by the same float cos / sin.
#include "kernels/cuda_backend.h"
#include "kernels/detail/cuda_common.cuh"

namespace statex {
using namespace cuda;

namespace {

// sign = +1: out = R x (forward); sign = -1: the inverse rotation (backward).
__global__ void rope_rotate(float* out, const float* inp, int T, int H, int Dh, float theta,
                            float sign, bool acc, size_t n_pairs) {
  const int half = Dh / 2;
  GRID_STRIDE(idx, n_pairs) {
    const int i = int(idx % half);
    const size_t row_h = idx / half;  // (b * T + t) * H + h
    const int t = int((row_h / H) % T);
    const double a = t * pow(double(theta), -2.0 * i / Dh);
    const float c = float(cos(a)), s = sign * float(sin(a));
    const float* x = inp + row_h * Dh;
    float* y = out + row_h * Dh;
    const float xa = x[i], xb = x[i + half];
    store_grad(&y[i], xa * c - xb * s, acc);
    store_grad(&y[i + half], xb * c + xa * s, acc);
  }
}

}  // namespace

void CudaBackend::rope_forward(float* out, const float* inp, int B, int T, int H, int Dh,
                               float theta) {
  const size_t n = size_t(B) * T * H * (Dh / 2);
  if (!n) return;
  rope_rotate<<<blocks_for(n), kThreads>>>(out, inp, T, H, Dh, theta, 1.f, false, n);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::rope_backward(float* dinp, const float* dout, int B, int T, int H, int Dh,
                                float theta, bool accumulate) {
  const size_t n = size_t(B) * T * H * (Dh / 2);
  if (!n) return;
  rope_rotate<<<blocks_for(n), kThreads>>>(dinp, dout, T, H, Dh, theta, -1.f, accumulate, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace statex
