// Rotary position embedding on the CPU (fla's RotaryEmbedding, interleaved = False; the
// "rotate half" form of GPT-NeoX / HF Llama). Per token t, head, and pair i < Dh/2:
//   f_i = theta^(-2i/Dh), (c, s) = (cos t f_i, sin t f_i)
//   out[i]        = x[i] c - x[i + Dh/2] s
//   out[i + Dh/2] = x[i + Dh/2] c + x[i] s
// The backward is the inverse rotation (the transpose of an orthogonal 2x2 block).
// The angles are computed in double and rounded once, so every backend's table is the same to
// float rounding (fla and the PyTorch reference compute them in float32: |t f_i| <= T, so the
// difference is a few ulps of T, below the parity test's tolerance for T <= a few thousand).
// Threading: OpenMP over tokens; each output element has one writer.
#include <omp.h>

#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {
namespace {

// cos / sin tables [T, Dh/2].
void rope_table(std::vector<float>& cs, std::vector<float>& sn, int T, int Dh, float theta) {
  const int half = Dh / 2;
  cs.resize(size_t(T) * half);
  sn.resize(size_t(T) * half);
  for (int i = 0; i < half; ++i) {
    const double f = std::pow(double(theta), -2.0 * i / Dh);
    for (int t = 0; t < T; ++t) {
      cs[size_t(t) * half + i] = float(std::cos(t * f));
      sn[size_t(t) * half + i] = float(std::sin(t * f));
    }
  }
}

// out = R(sign * angle) inp on every head of every token; sign = -1 is the backward.
void rotate(float* out, const float* inp, int B, int T, int H, int Dh, float theta, float sign,
            bool accumulate) {
  std::vector<float> cs, sn;
  rope_table(cs, sn, T, Dh, theta);
  const int half = Dh / 2;
#pragma omp parallel for schedule(static) if (size_t(B) * T * H * Dh >= (size_t(1) << 15))
  for (long row = 0; row < long(B) * T; ++row) {
    const int t = int(row % T);
    const float* c = cs.data() + size_t(t) * half;
    const float* s = sn.data() + size_t(t) * half;
    for (int h = 0; h < H; ++h) {
      const float* x = inp + (size_t(row) * H + h) * Dh;
      float* y = out + (size_t(row) * H + h) * Dh;
      for (int i = 0; i < half; ++i) {
        const float a = x[i], b = x[i + half], si = sign * s[i];
        const float ya = a * c[i] - b * si, yb = b * c[i] + a * si;
        y[i] = accumulate ? y[i] + ya : ya;
        y[i + half] = accumulate ? y[i + half] + yb : yb;
      }
    }
  }
}

}  // namespace

void CpuBackend::rope_forward(float* out, const float* inp, int B, int T, int H, int Dh,
                              float theta) {
  rotate(out, inp, B, T, H, Dh, theta, 1.f, false);
}

void CpuBackend::rope_backward(float* dinp, const float* dout, int B, int T, int H, int Dh,
                               float theta, bool accumulate) {
  rotate(dinp, dout, B, T, H, Dh, theta, -1.f, accumulate);
}

}  // namespace statex
