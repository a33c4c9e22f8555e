// CPU tests of the rmsnorm op family: RMSNorm (sim/ops/cpu/rmsnorm.cpp).
//
// Tolerance policy (see tests/support/fd_check.h): gradients by central finite differences on
// odd shapes (N=63, C=60, OC=37, V=53); forwards against direct double-precision formulas with
// tolerances of a few fp32 ulps times the size of the reduction. Accumulation semantics: every
// backward is run once into zeroed gradients (checked by FD) and once into random pre-filled
// gradients, which must end up holding prefill + gradient.
#include <gtest/gtest.h>

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <functional>
#include <limits>
#include <vector>

#include "sim/core/backend.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

TEST(CpuRmsnorm, ForwardMatchesDouble) {
  auto be = cpu();
  const float eps = 1e-5f;
  Vec x = random_vector(size_t(kN) * kC, 30, -2.f, 2.f), wt = random_vector(kC, 31, 0.5f, 1.5f);
  Vec out(x.size()), rstd(kN);
  be->rmsnorm_forward(out.data(), rstd.data(), x.data(), wt.data(), kN, kC, eps);
  for (int i = 0; i < kN; ++i) {
    double ms = 0;
    for (int c = 0; c < kC; ++c) ms += double(x[i * kC + c]) * x[i * kC + c];
    double r = 1.0 / std::sqrt(ms / kC + eps);
    ASSERT_NEAR(rstd[i], r, 1e-6 * r);
    for (int c = 0; c < kC; ++c)
      ASSERT_NEAR(out[i * kC + c], x[i * kC + c] * r * wt[c], 2e-6 * (1 + r * 2));
  }
}

TEST(CpuRmsnorm, GradientsByFiniteDifferences) {
  auto be = cpu();
  const float eps = 1e-5f;
  Vec x = random_vector(size_t(kN) * kC, 32, -2.f, 2.f), wt = random_vector(kC, 33, 0.5f, 1.5f);
  Vec w = random_vector(x.size(), 34), out(x.size()), rstd(kN);
  auto loss = [&] {
    be->rmsnorm_forward(out.data(), rstd.data(), x.data(), wt.data(), kN, kC, eps);
    return dot(out, w);
  };
  loss();
  Vec dx = zeros(x.size()), dwt = zeros(kC);
  be->rmsnorm_backward(dx.data(), dwt.data(), w.data(), x.data(), wt.data(), rstd.data(), kN, kC,
                       true);
  EXPECT_FD_OK(fd_check(loss, x, dx), "rmsnorm dinp");
  EXPECT_FD_OK(fd_check(loss, wt, dwt), "rmsnorm dweight");
  loss();  // restore rstd for the unperturbed input
  expect_accumulates(
      [&](float* g) {
        be->rmsnorm_backward(g, nullptr, w.data(), x.data(), wt.data(), rstd.data(), kN, kC, true);
      },
      dx, 35, "rmsnorm dinp");
  expect_accumulates(
      [&](float* g) {
        be->rmsnorm_backward(nullptr, g, w.data(), x.data(), wt.data(), rstd.data(), kN, kC, true);
      },
      dwt, 36, "rmsnorm dweight");
}

// dweight is a reduction over rows: it must give the same bits for 1 and several threads.
TEST(CpuRmsnorm, WeightGradientIndependentOfThreadCount) {
  auto be = cpu();
  const int N = 4099, C = 64;
  Vec x = random_vector(size_t(N) * C, 37), wt = random_vector(C, 38), dy = random_vector(x.size(), 39);
  Vec out(x.size()), rstd(N);
  be->rmsnorm_forward(out.data(), rstd.data(), x.data(), wt.data(), N, C, 1e-5f);
  Vec dw1 = zeros(C), dw4 = zeros(C);
  testing::OmpThreads threads(1);
  be->rmsnorm_backward(nullptr, dw1.data(), dy.data(), x.data(), wt.data(), rstd.data(), N, C,
                       true);
  threads.set(4);
  be->rmsnorm_backward(nullptr, dw4.data(), dy.data(), x.data(), wt.data(), rstd.data(), N, C,
                       true);
  EXPECT_EQ(dw1, dw4);
}

}  // namespace
}  // namespace statex
