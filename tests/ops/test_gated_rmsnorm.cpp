// CPU tests of the gated_rmsnorm op family: the Mamba2 gated RMSNorm
// (sim/ops/cpu/gated_rmsnorm.cpp).
//
// Tolerance policy:
//  - finite differences use tests/support/fd_check.h defaults (atol 2e-3, rtol 2e-2, justified
//    there: fp32 central differences with h = 1e-3 and |L| = O(10)).
//  - chunked SSD vs the recurrent reference (which computes in double): relative RMS error
//    < 1e-5 forward and < 1e-4 backward. The chunked path is fp32 with reductions of length
//    <= chunk + N (~100 terms), so its rounding error is a few eps_f32 * sqrt(terms) ~ 1e-6
//    relative; backward goes through more products (and the dt / A_log gradients through
//    differences of such terms), hence 10x more room.
#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/ssd_reference.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

TEST(GatedRmsNorm, FiniteDifferenceTwoGroups) {
  CpuBackend be;
  const int N = 7, C = 10, gs = 5;
  const float eps = 1e-5f;
  Vec y = random_vector(size_t(N) * C, 21, -2.f, 2.f), z = random_vector(y.size(), 22, -3.f, 3.f),
      weight = random_vector(C, 23, 0.5f, 1.5f), w = random_vector(y.size(), 24);
  Vec out(y.size()), rstd(size_t(N) * (C / gs));
  auto loss = [&] {
    be.gated_rmsnorm_forward(out.data(), rstd.data(), y.data(), z.data(), weight.data(), N, C, gs,
                             eps);
    return dot(out, w);
  };
  loss();
  // Forward against the definition, row 3 group 1.
  {
    double ss = 0;
    for (int c = 5; c < 10; ++c) {
      double zc = z[3 * C + c], u = y[3 * C + c] * zc / (1 + std::exp(-zc));
      ss += u * u;
    }
    double rs = 1 / std::sqrt(ss / gs + eps);
    double zc = z[3 * C + 7], u = y[3 * C + 7] * zc / (1 + std::exp(-zc));
    EXPECT_NEAR(rstd[3 * 2 + 1], rs, 1e-5 * rs);
    EXPECT_NEAR(out[3 * C + 7], u * rs * weight[7], 1e-5);
  }
  Vec dy = zeros(y.size()), dz = zeros(z.size()), dw = zeros(C);
  be.gated_rmsnorm_backward(dy.data(), dz.data(), dw.data(), w.data(), y.data(), z.data(),
                            weight.data(), rstd.data(), N, C, gs, true);
  EXPECT_FD_OK(fd_check(loss, y, dy), "gated_rmsnorm dy");
  EXPECT_FD_OK(fd_check(loss, z, dz), "gated_rmsnorm dz");
  EXPECT_FD_OK(fd_check(loss, weight, dw), "gated_rmsnorm dweight");
}
}  // namespace
}  // namespace statex
