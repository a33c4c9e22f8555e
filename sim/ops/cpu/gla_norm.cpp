// GLA output norm (fla FusedRMSNormSwishGate), per row of C (the head dim):
//   xhat = x * rstd,  rstd = 1/sqrt(mean(x^2) + eps),  out = xhat * weight * swish(g),
//   swish(g) = g * sigmoid(g).   x, g, out [N, C]; weight [C]; rstd [N].
// Threading: rows in parallel. dweight is reduced over fixed blocks of rows (independent of the
// thread count) in double, then summed in block order, so results are deterministic.
// Rows are Eigen arrays so every pass is vectorised; sigmoid is Eigen's logistic() (a rational
// interpolant within a couple of ulps, no overflow for any input).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "sim/ops/cpu/block_partials.h"
#include "sim/ops/cpu/cpu_backend.h"

namespace statex {
namespace {

constexpr int kRowsPerBlock = 64;  // dweight partial sums: one per block of rows

using Row = Eigen::Map<Eigen::ArrayXf>;
using ConstRow = Eigen::Map<const Eigen::ArrayXf>;

}  // namespace

void CpuBackend::rmsnorm_swish_gate_forward(float* out, float* rstd, const float* x, const float* g,
                                            const float* weight, int N, int C, float eps) {
  ConstRow w(weight, C);
#pragma omp parallel for schedule(static) if (N >= kRowsPerBlock)
  for (int r = 0; r < N; ++r) {
    ConstRow xr(x + size_t(r) * C, C), gr(g + size_t(r) * C, C);
    const float rs = 1.0f / std::sqrt(xr.square().sum() / C + eps);
    rstd[r] = rs;
    Row(out + size_t(r) * C, C) = xr * (rs * w) * gr * gr.logistic();
  }
}

void CpuBackend::rmsnorm_swish_gate_backward(float* dx, float* dg, float* dweight,
                                             const float* dout, const float* x, const float* g,
                                             const float* weight, const float* rstd, int N, int C) {
  const int n_blocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> dw_partial(dweight ? size_t(n_blocks) * C : 0, 0.0);
  ConstRow w(weight, C);
#pragma omp parallel for schedule(static) if (n_blocks > 1)
  for (int blk = 0; blk < n_blocks; ++blk) {
    Eigen::ArrayXf sg(C), dy(C), xhat(C);  // per-row scratch
    Eigen::ArrayXf dw_blk = Eigen::ArrayXf::Zero(dweight ? C : 0);
    const int r_end = std::min(N, (blk + 1) * kRowsPerBlock);
    for (int r = blk * kRowsPerBlock; r < r_end; ++r) {
      ConstRow xr(x + size_t(r) * C, C), gr(g + size_t(r) * C, C), dor(dout + size_t(r) * C, C);
      const float rs = rstd[r];
      sg = gr.logistic();
      xhat = xr * rs;
      dy = dor * gr * sg;  // gradient on y = xhat * weight
      // d swish / dg = sigmoid(g) (1 + g (1 - sigmoid(g)))
      if (dg) Row(dg + size_t(r) * C, C) += dor * xhat * w * sg * (1.f + gr * (1.f - sg));
      if (dweight) dw_blk += dy * xhat;
      if (dx) {
        // dx = rstd (dxhat - xhat mean(dxhat xhat)),  dxhat = dy * weight
        const float m = (dy * w * xhat).sum() / C;
        Row(dx + size_t(r) * C, C) += rs * (dy * w - xhat * m);
      }
    }
    if (dweight)
      Eigen::Map<Eigen::ArrayXd>(&dw_partial[size_t(blk) * C], C) = dw_blk.cast<double>();
  }
  if (dweight) add_block_partials(dweight, dw_partial, n_blocks, C);
}

}  // namespace statex
