// Mamba2 elementwise ops on the CPU: dt softplus (+ bias), the D skip, and the gated RMSNorm
// (mamba_ssm RMSNormGated, norm_before_gate=False). Contract: sim/core/backend.h.
//
// Parameter gradients (ddt_bias, dD, dweight) are reductions over all N rows. To keep results
// independent of the thread count, rows are cut into fixed blocks of kRowsPerBlock; each block's
// partial sum (double) is computed by one thread and the partials are added in block order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <Eigen/Core>

#include "sim/ops/cpu/block_partials.h"
#include "sim/ops/cpu/cpu_backend.h"

namespace statex {
namespace {

constexpr int kRowsPerBlock = 256;
// Below this many elements a parallel region costs more than it saves.
constexpr size_t kMinParallelWork = size_t(1) << 15;
// PyTorch F.softplus(beta=1, threshold=20): identity above the threshold.
constexpr float kSoftplusThreshold = 20.f;

using Arr = Eigen::Map<Eigen::ArrayXf>;
using ConstArr = Eigen::Map<const Eigen::ArrayXf>;

inline float sigmoidf(float v) { return 1.f / (1.f + std::exp(-v)); }

// out[c] += sum_{r<N} row_term(r, c) for c < C, deterministic for any thread count.
// row_term(r, partial) adds row r's contribution into partial[0..C).
template <class RowTerm>
void blocked_column_sum(float* out, int N, int C, RowTerm row_term) {
  const int nblocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> partial(size_t(nblocks) * C, 0.0);
#pragma omp parallel for schedule(static) if (nblocks > 1 && size_t(N) * C >= kMinParallelWork)
  for (int blk = 0; blk < nblocks; ++blk) {
    double* p = partial.data() + size_t(blk) * C;
    const int r_end = std::min(N, (blk + 1) * kRowsPerBlock);
    for (int r = blk * kRowsPerBlock; r < r_end; ++r) row_term(r, p);
  }
  add_block_partials(out, partial, nblocks, C);
}

}  // namespace

// dt [N, H] = softplus(dt_raw [N, H] + dt_bias [H])
void CpuBackend::softplus_bias_forward(float* dt, const float* dt_raw, const float* dt_bias, int N,
                                       int H) {
#pragma omp parallel for schedule(static) if (size_t(N) * H >= kMinParallelWork)
  for (int r = 0; r < N; ++r) {
    for (int h = 0; h < H; ++h) {
      const float v = dt_raw[size_t(r) * H + h] + dt_bias[h];
      dt[size_t(r) * H + h] = v > kSoftplusThreshold ? v : std::log1p(std::exp(v));
    }
  }
}

void CpuBackend::softplus_bias_backward(float* ddt_raw, float* ddt_bias, const float* ddt,
                                        const float* dt_raw, const float* dt_bias, int N, int H) {
  // d softplus(v)/dv = sigmoid(v); exactly 1 above the threshold (identity branch).
  auto slope = [&](int r, int h) {
    const float v = dt_raw[size_t(r) * H + h] + dt_bias[h];
    return v > kSoftplusThreshold ? 1.f : sigmoidf(v);
  };
  if (ddt_raw) {
#pragma omp parallel for schedule(static) if (size_t(N) * H >= kMinParallelWork)
    for (int r = 0; r < N; ++r)
      for (int h = 0; h < H; ++h) ddt_raw[size_t(r) * H + h] += ddt[size_t(r) * H + h] * slope(r, h);
  }
  if (ddt_bias) {
    blocked_column_sum(ddt_bias, N, H, [&](int r, double* p) {
      for (int h = 0; h < H; ++h) p[h] += double(ddt[size_t(r) * H + h]) * slope(r, h);
    });
  }
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

void CpuBackend::ssd_dskip_backward(float* dx, float* dD, const float* dy, const float* x,
                                    const float* D, int N, int H, int P) {
  if (dx) {
#pragma omp parallel for schedule(static) if (size_t(N) * H * P >= kMinParallelWork)
    for (int r = 0; r < N; ++r)
      for (int h = 0; h < H; ++h) {
        const size_t o = (size_t(r) * H + h) * P;
        for (int p = 0; p < P; ++p) dx[o + p] += D[h] * dy[o + p];
      }
  }
  if (dD) {
    blocked_column_sum(dD, N, H, [&](int r, double* part) {
      for (int h = 0; h < H; ++h) {
        const size_t o = (size_t(r) * H + h) * P;
        double s = 0;
        for (int p = 0; p < P; ++p) s += double(dy[o + p]) * x[o + p];
        part[h] += s;
      }
    });
  }
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
                                        const float* rstd, int N, int C, int group_size) {
  const int ngroups = C / group_size;
  const int nblocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> dw_partial(dweight ? size_t(nblocks) * C : 0);
  ConstArr w(weight, C);
#pragma omp parallel for schedule(static) if (nblocks > 1 && size_t(N) * C >= kMinParallelWork)
  for (int blk = 0; blk < nblocks; ++blk) {
    Eigen::ArrayXf sz(C), silu(C), u(C), du(C), rs_row(C);  // per-row scratch
    Eigen::ArrayXf dw_blk = Eigen::ArrayXf::Zero(dweight ? C : 0);
    const int r_end = std::min(N, (blk + 1) * kRowsPerBlock);
    for (int r = blk * kRowsPerBlock; r < r_end; ++r) {
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
      if (dy) Arr(dy + row, C) += du * silu;
      if (dz) Arr(dz + row, C) += du * yr * sz * (1.f + zr * (1.f - sz));
      if (dweight) dw_blk += dor * u * rs_row;
    }
    if (dweight)
      Eigen::Map<Eigen::ArrayXd>(&dw_partial[size_t(blk) * C], C) = dw_blk.cast<double>();
  }
  if (dweight) add_block_partials(dweight, dw_partial, nblocks, C);
}

}  // namespace statex
