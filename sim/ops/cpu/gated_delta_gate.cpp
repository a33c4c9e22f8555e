// Gates of the gated delta rule (Gated DeltaNet), per row n and head h:
//   g    [N, H] = -exp(A_log[h]) * softplus(a_raw + dt_bias[h])     (log-space decay, <= 0)
//   beta [N, H] = beta_scale * sigmoid(b_raw)
// softplus as PyTorch's F.softplus (threshold 20), evaluated as max(v, 0) + log1p(exp(-|v|)),
// which never overflows and equals v above the threshold to within half an ulp.
// Backward, with v = a_raw + dt_bias, A = exp(A_log):
//   da_raw = dg * (-A) * sigmoid(v);  ddt_bias[h] += sum_n da_raw;  dA_log[h] += sum_n dg * g
//   db_raw = dbeta * beta_scale * sigmoid(b) (1 - sigmoid(b))
// dA_log and ddt_bias are reduced over fixed blocks of rows (float within a block, double across
// blocks in block order), so they do not depend on the thread count.
#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "sim/ops/cpu/detail/block_partials.h"
#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"

namespace statex {
namespace {

constexpr int kRowsPerBlock = 256;
constexpr size_t kMinParallelWork = size_t(1) << 15;

inline float softplus(float v) { return std::max(v, 0.f) + std::log1p(std::exp(-std::fabs(v))); }
inline float sigmoid(float v) { return 1.f / (1.f + std::exp(-v)); }

}  // namespace

void CpuBackend::gated_delta_gate_forward(float* g, float* beta, const float* a_raw,
                                          const float* b_raw, const float* A_log,
                                          const float* dt_bias, int N, int H, float beta_scale) {
  std::vector<float> negA(H);
  for (int h = 0; h < H; ++h) negA[h] = -std::exp(A_log[h]);
  const size_t n = size_t(N) * H;
#pragma omp parallel for schedule(static) if (n >= kMinParallelWork)
  for (size_t i = 0; i < n; ++i) {
    const int h = int(i % H);
    g[i] = negA[h] * softplus(a_raw[i] + dt_bias[h]);
    beta[i] = beta_scale * sigmoid(b_raw[i]);
  }
}

void CpuBackend::gated_delta_gate_backward(float* da_raw, float* db_raw, float* dA_log,
                                           float* ddt_bias, const float* dg, const float* dbeta,
                                           const float* a_raw, const float* b_raw,
                                           const float* A_log, const float* dt_bias, int N, int H,
                                           float beta_scale, bool accumulate) {
  std::vector<float> negA(H);
  for (int h = 0; h < H; ++h) negA[h] = -std::exp(A_log[h]);
  // Column sums [dA_log | ddt_bias] of the whole block in one reduction of width 2H.
  std::vector<float> sums(2 * size_t(H), 0.f);
  const bool want_sums = dA_log || ddt_bias;
  auto block = [&](int r0, int n, Eigen::ArrayXf* sum) {
    for (int r = r0; r < r0 + n; ++r)
      for (int h = 0; h < H; ++h) {
        const size_t i = size_t(r) * H + h;
        if (dg) {
          const float v = a_raw[i] + dt_bias[h];
          const float dv = dg[i] * negA[h] * sigmoid(v);
          if (da_raw) store_grad(da_raw[i], dv, accumulate);
          if (sum) {
            (*sum)[h] += dg[i] * negA[h] * softplus(v);  // dg * g
            (*sum)[H + h] += dv;
          }
        } else if (da_raw && !accumulate) {
          da_raw[i] = 0.f;
        }
        if (db_raw) {
          const float s = sigmoid(b_raw[i]);
          store_grad(db_raw[i], dbeta ? dbeta[i] * beta_scale * s * (1.f - s) : 0.f, accumulate);
        }
      }
  };
  for_row_blocks_summing(want_sums && dg ? sums.data() : nullptr, 2 * H, N, kRowsPerBlock,
                         size_t(N) * H >= kMinParallelWork, block);
  for (int h = 0; h < H; ++h) {
    if (dA_log) dA_log[h] += sums[h];
    if (ddt_bias) ddt_bias[h] += sums[H + h];
  }
}

}  // namespace statex
