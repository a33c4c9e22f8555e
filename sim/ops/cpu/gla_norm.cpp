// GLA output norm (fla FusedRMSNormSwishGate), per row of C (the head dim):
//   xhat = x * rstd,  rstd = 1/sqrt(mean(x^2) + eps),  out = xhat * weight * swish(g),
//   swish(g) = g * sigmoid(g).   x, g, out [N, C]; weight [C]; rstd [N].
// Threading: rows in parallel. dweight is reduced over fixed blocks of rows (independent of the
// thread count) in double, then summed in block order, so results are deterministic.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {
namespace {

constexpr int kRowsPerBlock = 64;  // dweight partial sums: one per block of rows

inline float sigmoidf(float z) { return 1.f / (1.f + std::exp(-z)); }

}  // namespace

void CpuBackend::rmsnorm_swish_gate_forward(float* out, float* rstd, const float* x, const float* g,
                                            const float* weight, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if (N >= kRowsPerBlock)
  for (int r = 0; r < N; ++r) {
    const float* xr = x + size_t(r) * C;
    const float* gr = g + size_t(r) * C;
    float* orow = out + size_t(r) * C;
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += double(xr[c]) * xr[c];
    const float rs = float(1.0 / std::sqrt(ss / C + double(eps)));
    rstd[r] = rs;
    for (int c = 0; c < C; ++c) orow[c] = xr[c] * rs * weight[c] * gr[c] * sigmoidf(gr[c]);
  }
}

void CpuBackend::rmsnorm_swish_gate_backward(float* dx, float* dg, float* dweight,
                                             const float* dout, const float* x, const float* g,
                                             const float* weight, const float* rstd, int N, int C) {
  const int n_blocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> dw_partial(dweight ? size_t(n_blocks) * C : 0, 0.0);
#pragma omp parallel for schedule(static) if (n_blocks > 1)
  for (int blk = 0; blk < n_blocks; ++blk) {
    double* dw = dweight ? &dw_partial[size_t(blk) * C] : nullptr;
    const int r_end = std::min(N, (blk + 1) * kRowsPerBlock);
    for (int r = blk * kRowsPerBlock; r < r_end; ++r) {
      const float* xr = x + size_t(r) * C;
      const float* gr = g + size_t(r) * C;
      const float* dor = dout + size_t(r) * C;
      const float rs = rstd[r];
      double dot_xhat = 0;  // sum_c dxhat_c * xhat_c
      for (int c = 0; c < C; ++c) {
        const float sg = sigmoidf(gr[c]);
        const float xhat = xr[c] * rs;
        const float dy = dor[c] * gr[c] * sg;  // gradient on y = xhat * weight
        if (dg) {
          // d swish / dg = sigmoid(g) (1 + g (1 - sigmoid(g)))
          dg[size_t(r) * C + c] += dor[c] * xhat * weight[c] * sg * (1.f + gr[c] * (1.f - sg));
        }
        if (dw) dw[c] += double(dy) * xhat;
        dot_xhat += double(dy) * weight[c] * xhat;
      }
      if (dx) {
        // dx = rstd (dxhat - xhat mean(dxhat xhat)),  dxhat = dy * weight
        const float m = float(dot_xhat / C);
        for (int c = 0; c < C; ++c) {
          const float dy = dor[c] * gr[c] * sigmoidf(gr[c]);
          dx[size_t(r) * C + c] += rs * (dy * weight[c] - xr[c] * rs * m);
        }
      }
    }
  }
  if (dweight) {
    for (int c = 0; c < C; ++c) {
      double acc = 0;
      for (int blk = 0; blk < n_blocks; ++blk) acc += dw_partial[size_t(blk) * C + c];
      dweight[c] += float(acc);
    }
  }
}

}  // namespace statex
