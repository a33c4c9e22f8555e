// Mamba2 D skip (y += D x per head), on the CPU. Contract: sim/core/ops.def.
#include <Eigen/Core>
#include <cmath>
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/block_partials.h"
#include "sim/ops/cpu/detail/grad_store.h"
#include "sim/ops/cpu/detail/row_blocks.h"

namespace statex {

using namespace row_blocks;

// y [N, H, P] += D[h] * x [N, H, P]
void CpuBackend::ssd_dskip_forward(float* y, const float* x, const float* D, int N, int H, int P) {
#pragma omp parallel for schedule(static) if (size_t(N) * H * P >= kMinParallelWork)
  for (int r = 0; r < N; ++r)
    for (int h = 0; h < H; ++h) {
      const size_t o = (size_t(r) * H + h) * P;
      for (int p = 0; p < P; ++p) y[o + p] += D[h] * x[o + p];
    }
}

// dx += D[h] dy and dD[h] += sum over rows and p of dy x, in one pass per row block (dD: float
// within the block, double across blocks in block order).
void CpuBackend::ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x,
                                    const float* D, int N, int H, int P, bool accumulate) {
  if (!dx && !dD) return;
  const Eigen::Map<const Eigen::ArrayXf> Dh(D, H);
  auto block = [&](int r0, int n, Eigen::ArrayXf* dD_sum) {
    for (int r = r0; r < r0 + n; ++r) {
      const size_t o = size_t(r) * H * P;
      const ConstRowBlock dyr(dy + o, H, P);  // [H, P]
      if (dx) store_grad(RowBlock(dx + o, H, P), dyr.colwise() * Dh, accumulate);
      if (dD_sum) *dD_sum += (dyr * ConstRowBlock(x + o, H, P)).rowwise().sum();
    }
  };
  for_row_blocks_summing(dD, H, N, kRowsPerBlock, worth_parallel(N, H * P), block);
}

}  // namespace statex
