// GLA output norm (fla FusedRMSNormSwishGate), per row of C (the head dim):
//   xhat = x * rstd,  rstd = 1/sqrt(mean(x^2) + eps),  out = xhat * weight * swish(g),
//   swish(g) = g * sigmoid(g).   x, g, out [N, C]; weight [C]; rstd [N].
// Threading: rows in parallel. dweight is reduced over fixed blocks of rows (float within a block,
// double across blocks in block order: for_row_blocks_summing), so it does not depend on the
// thread count.
// Rows are Eigen arrays so every pass is vectorised; sigmoid is Eigen's logistic() (a rational
// interpolant within a couple of ulps, no overflow for any input).
#include <Eigen/Core>
#include <cmath>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/block_partials.h"
#include "sim/ops/cpu/detail/grad_store.h"

namespace statex {
namespace {

constexpr int kRowsPerBlock = 64;  // dweight partial sums: one per block of rows

using Row = Eigen::Map<Eigen::ArrayXf>;
using ConstRow = Eigen::Map<const Eigen::ArrayXf>;

}  // namespace

void CpuBackend::gla_norm_forward(float* out, float* rstd, const float* x, const float* g,
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

void CpuBackend::gla_norm_backward(float* dx, float* dg, float* dweight, const float* dout,
                                   const float* x, const float* g, const float* weight,
                                   const float* rstd, int N, int C, bool accumulate) {
  ConstRow w(weight, C);
  // Rows [r0, r0 + n); their dweight sums into dw_sum (nullptr when dweight is not wanted).
  auto block = [&](int r0, int n, Eigen::ArrayXf* dw_sum) {
    Eigen::ArrayXf sg(C), dy(C), xhat(C);  // per-row scratch
    for (int r = r0; r < r0 + n; ++r) {
      ConstRow xr(x + size_t(r) * C, C), gr(g + size_t(r) * C, C), dor(dout + size_t(r) * C, C);
      const float rs = rstd[r];
      sg = gr.logistic();
      xhat = xr * rs;
      dy = dor * gr * sg;  // gradient on y = xhat * weight
      // d swish / dg = sigmoid(g) (1 + g (1 - sigmoid(g)))
      if (dg)
        store_grad(Row(dg + size_t(r) * C, C), dor * xhat * w * sg * (1.f + gr * (1.f - sg)),
                   accumulate);
      if (dw_sum) *dw_sum += dy * xhat;
      if (dx) {
        // dx = rstd (dxhat - xhat mean(dxhat xhat)),  dxhat = dy * weight
        const float m = (dy * w * xhat).sum() / C;
        store_grad(Row(dx + size_t(r) * C, C), rs * (dy * w - xhat * m), accumulate);
      }
    }
  };
  for_row_blocks_summing(dweight, C, N, kRowsPerBlock, /*parallel=*/true, block);
}

}  // namespace statex
