// Mamba2 elementwise ops on the CPU: dt softplus (+ bias), the D skip, and the gated RMSNorm
// (mamba_ssm RMSNormGated, norm_before_gate=False). Contract: sim/core/backend.h.
//
// Parameter gradients (ddt_bias, dD, dweight) are reductions over all N rows. To keep results
// independent of the thread count, rows are cut into fixed blocks of kRowsPerBlock; each block's
// partial sum (float within the block) is computed by one thread and the partials are added in
// double, in block order.
#include <Eigen/Core>
#include <cmath>
#include <stdexcept>

#include "sim/ops/cpu/block_partials.h"
#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/grad_store.h"

namespace statex {
namespace {

constexpr int kRowsPerBlock = 256;
// Below this many elements a parallel region costs more than it saves.
constexpr size_t kMinParallelWork = size_t(1) << 15;

using Arr = Eigen::Map<Eigen::ArrayXf>;
using ConstArr = Eigen::Map<const Eigen::ArrayXf>;
using RowArrXX = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowBlock = Eigen::Map<RowArrXX>;             // [n, H] rows of an [N, H] tensor
using ConstRowBlock = Eigen::Map<const RowArrXX>;
using ConstRowVec = Eigen::Map<const Eigen::Array<float, 1, Eigen::Dynamic>>;

// Whether a pass over an [N, C] tensor is big enough to run its row blocks in parallel.
bool worth_parallel(int N, int C) { return size_t(N) * C >= kMinParallelWork; }

}  // namespace

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

// u = y * silu(z); out = u * rstd_group * weight. y, z, out [N, C]; rstd [N, C/group_size].
// Rows are Eigen arrays (vectorised; sigmoid = Eigen's logistic(), a couple of ulps).
void CpuBackend::gated_rmsnorm_forward(float* out, float* rstd, const float* y, const float* z,
                                       const float* weight, int N, int C, int group_size,
                                       float eps) {
  if (group_size <= 0 || C % group_size != 0)
    throw std::invalid_argument("gated_rmsnorm: C must be a multiple of group_size");
  const int ngroups = C / group_size;
  ConstArr w(weight, C);
#pragma omp parallel for schedule(static) if (size_t(N) * C >= kMinParallelWork)
  for (int r = 0; r < N; ++r) {
    const size_t row = size_t(r) * C;
    Arr u(out + row, C);
    ConstArr zr(z + row, C);
    u = ConstArr(y + row, C) * zr * zr.logistic();  // stash u, scaled below
    for (int g = 0; g < ngroups; ++g) {
      auto ug = u.segment(g * group_size, group_size);
      const float rs = 1.0f / std::sqrt(ug.square().sum() / group_size + eps);
      rstd[size_t(r) * ngroups + g] = rs;
      ug *= rs * w.segment(g * group_size, group_size);
    }
  }
}

// With rs = (mean_g u^2 + eps)^-1/2 and out_c = u_c rs w_c:
//   du_c = rs w_c dout_c - u_c rs^3 / group_size * sum_g(dout w u);
//   dy = du silu(z);  dz = du y silu'(z);  dweight_c = sum_rows dout_c u_c rs.
// dweight is reduced per fixed block of rows (float inside a block, double across blocks in
// block order), so it does not depend on the thread count.
void CpuBackend::gated_rmsnorm_backward(float* dy, float* dz, float* dweight, const float* dout,
                                        const float* y, const float* z, const float* weight,
                                        const float* rstd, int N, int C, int group_size,
                                        bool accumulate) {
  const int ngroups = C / group_size;
  ConstArr w(weight, C);
  // Rows [r0, r0 + n); their dweight sums into dw_sum (nullptr when dweight is not wanted).
  auto block = [&](int r0, int n, Eigen::ArrayXf* dw_sum) {
    Eigen::ArrayXf sz(C), silu(C), u(C), du(C), rs_row(C);  // per-row scratch
    for (int r = r0; r < r0 + n; ++r) {
      const size_t row = size_t(r) * C;
      ConstArr yr(y + row, C), zr(z + row, C), dor(dout + row, C);
      sz = zr.logistic();
      silu = zr * sz;
      u = yr * silu;
      for (int g = 0; g < ngroups; ++g) {
        const int c0 = g * group_size;
        const float rs = rstd[size_t(r) * ngroups + g];
        rs_row.segment(c0, group_size).setConstant(rs);
        const float k = (dor.segment(c0, group_size) * w.segment(c0, group_size) *
                         u.segment(c0, group_size)).sum() * rs * rs * rs / group_size;
        du.segment(c0, group_size) = rs * w.segment(c0, group_size) * dor.segment(c0, group_size) -
                                     u.segment(c0, group_size) * k;
      }
      if (dy) store_grad(Arr(dy + row, C), du * silu, accumulate);
      if (dz) store_grad(Arr(dz + row, C), du * yr * sz * (1.f + zr * (1.f - sz)), accumulate);
      if (dw_sum) *dw_sum += dor * u * rs_row;
    }
  };
  for_row_blocks_summing(dweight, C, N, kRowsPerBlock, worth_parallel(N, C), block);
}

}  // namespace statex
