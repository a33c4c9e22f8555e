// Mamba2 dt: softplus with a per-head bias, on the CPU. Contract: sim/core/ops.def.
#include <Eigen/Core>
#include <cmath>
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/block_partials.h"
#include "sim/ops/cpu/detail/grad_store.h"
#include "sim/ops/cpu/detail/row_blocks.h"

namespace statex {

using namespace row_blocks;

// dt [N, H] = softplus(dt_raw [N, H] + dt_bias [H]) as PyTorch's F.softplus(beta=1,
// threshold=20), evaluated as max(v, 0) + log1p(exp(-|v|)):
// never overflows, and above the threshold (v > 20) the log1p term (< 2e-9) is below half an ulp
// of v, so the result is exactly v, as PyTorch's identity branch gives. Blocks of rows are
// Eigen arrays (vectorised exp / log1p).
void CpuBackend::softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias, int N,
                                       int H) {
  const ConstRowVec bias(dt_bias, H);
  for_row_blocks(N, kRowsPerBlock, worth_parallel(N, H), [&](int r0, int n) {
    RowBlock v(dt + size_t(r0) * H, n, H);
    v = ConstRowBlock(dt_raw + size_t(r0) * H, n, H).rowwise() + bias;
    v = v.max(0.f) + (-v.abs()).exp().log1p();
  });
}

// d softplus(v)/dv = sigmoid(v) = logistic(v), which is exactly 1 above ~15.7, so also on the
// identity branch (v > 20). One pass per row block: g = ddt * sigmoid(v) is added into ddt_raw
// and its column sums (float within the block, double across blocks in block order) into
// ddt_bias.
void CpuBackend::softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                                        const float* dt_raw, const float* dt_bias, int N, int H,
                                        bool accumulate) {
  if (!ddt_raw && !ddt_bias) return;
  const ConstRowVec bias(dt_bias, H);
  auto block = [&](int r0, int n, Eigen::ArrayXf* bias_sum) {
    const size_t o = size_t(r0) * H;
    const auto v = ConstRowBlock(dt_raw + o, n, H).rowwise() + bias;  // [n, H]
    const RowArrXX g = ConstRowBlock(ddt + o, n, H) * v.logistic();
    if (ddt_raw) store_grad(RowBlock(ddt_raw + o, n, H), g, accumulate);
    if (bias_sum) *bias_sum = g.colwise().sum().transpose();
  };
  for_row_blocks_summing(ddt_bias, H, N, kRowsPerBlock, worth_parallel(N, H), block);
}

}  // namespace statex
