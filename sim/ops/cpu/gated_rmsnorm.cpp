// Mamba2 gated RMSNorm (mamba_ssm RMSNormGated, norm_before_gate=False), on the CPU.
// Contract: sim/core/ops.def.
#include <Eigen/Core>
#include <cmath>
#include <stdexcept>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/block_partials.h"
#include "sim/ops/cpu/detail/grad_store.h"
#include "sim/ops/cpu/detail/row_blocks.h"

namespace statex {

using namespace row_blocks;

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
