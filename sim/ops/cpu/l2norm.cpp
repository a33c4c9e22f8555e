// Row-wise L2 normalisation (fla l2norm, applied to q and k per head by Gated DeltaNet):
//   out [N, C] = inp * rstd,  rstd [N] = 1/sqrt(sum(inp^2) + eps).
// Backward (y = out): dinp = rstd * (dout - (dout . y) y). Rows in parallel; no reductions
// across rows, so results do not depend on the thread count.
#include <Eigen/Core>
#include <cmath>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"

namespace statex {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr size_t kMinParallelWork = size_t(1) << 15;

using Row = Eigen::Map<Eigen::ArrayXf>;
using ConstRow = Eigen::Map<const Eigen::ArrayXf>;

}  // namespace

void CpuBackend::l2norm_forward(float* out, float* rstd, const float* inp, int N, int C,
                                float eps) {
#pragma omp parallel for schedule(static) if (size_t(N) * C >= kMinParallelWork)
  for (int r = 0; r < N; ++r) {
    ConstRow x(inp + size_t(r) * C, C);
    const float rs = 1.0f / std::sqrt(x.square().sum() + eps);
    rstd[r] = rs;
    Row(out + size_t(r) * C, C) = x * rs;
  }
}

void CpuBackend::l2norm_backward(float* dinp, const float* dout, const float* out,
                                 const float* rstd, int N, int C, bool accumulate) {
  if (!dinp) return;
#pragma omp parallel for schedule(static) if (size_t(N) * C >= kMinParallelWork)
  for (int r = 0; r < N; ++r) {
    ConstRow dy(dout + size_t(r) * C, C), y(out + size_t(r) * C, C);
    const float dot = (dy * y).sum();
    store_grad(Row(dinp + size_t(r) * C, C), rstd[r] * (dy - dot * y), accumulate);
  }
}

}  // namespace statex
