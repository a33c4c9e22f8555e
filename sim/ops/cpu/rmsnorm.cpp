// RMSNorm: out [N, C] = inp * rstd * weight, rstd [N] = 1/sqrt(mean(inp^2) + eps), weight [C].
//
// Backward, per row with r = rstd, g = dout * weight:
//   dinp    += r g - inp r^3 (g . inp) / C
//   dweight += sum over rows of dout * inp * r
// dweight is a reduction over rows. To keep it deterministic whatever the thread count, rows are
// cut into fixed blocks of kRowBlock rows; each block's partial sum is computed by one thread,
// and the partials are added in block order.
#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"

namespace statex {

namespace {
using RowMap = Eigen::Map<Eigen::ArrayXf>;
using ConstRowMap = Eigen::Map<const Eigen::ArrayXf>;
constexpr int kRowBlock = 64;
}  // namespace

void CpuBackend::rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight,
                                 int N, int C, float eps) {
  ConstRowMap w(weight, C);
  const bool parallel = (long long)N * C >= (1 << 14);
#pragma omp parallel for schedule(static) if (parallel)
  for (int i = 0; i < N; ++i) {
    ConstRowMap x(inp + (size_t)i * C, C);
    const float r = 1.f / std::sqrt(x.square().sum() / float(C) + eps);
    rstd[i] = r;
    RowMap(out + (size_t)i * C, C) = x * r * w;
  }
}

void CpuBackend::rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                  const float* weight, const float* rstd, int N, int C,
                                  bool accumulate) {
  if (!dinp && !dweight) return;
  ConstRowMap w(weight, C);
  const int blocks = (N + kRowBlock - 1) / kRowBlock;
  // partial[blk, :] = sum over the block's rows of dout * inp * r
  std::vector<float> partial(dweight ? (size_t)blocks * C : 0, 0.f);
  const bool parallel = (long long)N * C >= (1 << 14);
#pragma omp parallel for schedule(static) if (parallel)
  for (int blk = 0; blk < blocks; ++blk) {
    const int i1 = (blk + 1) * kRowBlock < N ? (blk + 1) * kRowBlock : N;
    for (int i = blk * kRowBlock; i < i1; ++i) {
      ConstRowMap x(inp + (size_t)i * C, C);
      ConstRowMap dy(dout + (size_t)i * C, C);
      const float r = rstd[i];
      if (dinp) {
        // g = dy * w, written out twice rather than held in a per-row (heap) temporary
        const float coef = r * r * r * (dy * w * x).sum() / float(C);
        store_grad(RowMap(dinp + (size_t)i * C, C), r * (dy * w) - coef * x, accumulate);
      }
      if (dweight) RowMap(partial.data() + (size_t)blk * C, C) += dy * x * r;
    }
  }
  if (dweight) {
    // Fixed block order per column: same bits for any thread count.
    for (int blk = 0; blk < blocks; ++blk)
      RowMap(dweight, C) += ConstRowMap(partial.data() + (size_t)blk * C, C);
  }
}

}  // namespace statex
