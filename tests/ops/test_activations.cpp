// CPU tests of the activations op family: the elementwise activations: silu, logsigmoid, swiglu
// (sim/ops/cpu/activations.cpp).
//
// Tolerance policy (see tests/support/fd_check.h): gradients by central finite differences on
// odd shapes (N=63, C=60, OC=37, V=53); forwards against direct double-precision formulas with
// tolerances of a few fp32 ulps times the size of the reduction. Accumulation semantics: every
// backward is run once into zeroed gradients (checked by FD) and once into random pre-filled
// gradients, which must end up holding prefill + gradient.
#include <gtest/gtest.h>
#include <omp.h>

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

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double logsigmoid_d(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }

// Forward values against double formulas, including the region where naive forms overflow.
TEST(CpuActivations, ForwardMatchesDoubleFormulas) {
  auto be = cpu();
  Vec x = random_vector(20011, 9, -12.f, 12.f);  // > one chunk, odd length
  for (float extreme : {-100.f, 100.f, -1e4f, 1e4f, -88.f, 88.f, 0.f}) x.push_back(extreme);
  const size_t n = x.size();
  Vec up = random_vector(n, 10), silu(n), ls(n), sw(n);
  const float scale = 1.f / 16.f;
  be->silu_forward(silu.data(), x.data(), n);
  be->logsigmoid_forward(ls.data(), x.data(), scale, n);
  be->swiglu_forward(sw.data(), x.data(), up.data(), n);
  for (size_t i = 0; i < n; ++i) {
    double xi = x[i];
    double s = xi * sigmoid_d(xi);
    ASSERT_NEAR(silu[i], s, 2e-6 * (1 + std::fabs(s))) << "silu x=" << xi;
    ASSERT_NEAR(sw[i], s * up[i], 2e-6 * (1 + std::fabs(s))) << "swiglu x=" << xi;
    double l = scale * logsigmoid_d(xi);
    ASSERT_NEAR(ls[i], l, 2e-6 * (1e-3 + std::fabs(l))) << "logsigmoid x=" << xi;
  }
}

TEST(CpuActivations, LogsigmoidStableAtLargeMagnitude) {
  auto be = cpu();
  Vec x = {100.f, -100.f, 1e4f, -1e4f, 30.f, -30.f};
  const size_t n = x.size();
  Vec out(n), din(n, 0.f), dout(n, 1.f);
  be->logsigmoid_forward(out.data(), x.data(), 1.f, n);
  be->logsigmoid_backward(din.data(), dout.data(), x.data(), 1.f, n, true);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(out[i]) && std::isfinite(din[i])) << "x=" << x[i];
    EXPECT_NEAR(out[i], logsigmoid_d(x[i]), 1e-6 * (1 + std::fabs(x[i]))) << "x=" << x[i];
    EXPECT_NEAR(din[i], sigmoid_d(-x[i]), 1e-7) << "x=" << x[i];  // d/dx = sigmoid(-x)
  }
  EXPECT_EQ(out[1], -100.f);
  EXPECT_EQ(din[1], 1.f);
  EXPECT_LE(out[0], 0.f);
  EXPECT_GE(out[0], -1e-40f);
  // Relative accuracy of the small tail: logsigmoid(30) = -exp(-30)(1 + O(e^-30)).
  EXPECT_NEAR(out[4] / -std::exp(-30.0), 1.0, 1e-5);
  EXPECT_NEAR(din[4] / std::exp(-30.0), 1.0, 1e-5);
  Vec silu(n), dsilu(n, 0.f);
  be->silu_forward(silu.data(), x.data(), n);
  be->silu_backward(dsilu.data(), dout.data(), x.data(), n, true);
  for (size_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(silu[i]) && std::isfinite(dsilu[i]));
  EXPECT_EQ(silu[0], 100.f);
  EXPECT_NEAR(silu[1], 0.f, 1e-30);
}

TEST(CpuActivations, GradientsByFiniteDifferences) {
  auto be = cpu();
  const size_t n = size_t(kN) * kC;
  Vec x = random_vector(n, 11, -4.f, 4.f), up = random_vector(n, 12);
  Vec w = random_vector(n, 13), out(n);
  const float scale = 0.3f;

  auto silu_loss = [&] { be->silu_forward(out.data(), x.data(), n); return dot(out, w); };
  Vec dx = zeros(n);
  be->silu_backward(dx.data(), w.data(), x.data(), n, true);
  EXPECT_FD_OK(fd_check(silu_loss, x, dx), "silu dinp");
  expect_accumulates([&](float* g) { be->silu_backward(g, w.data(), x.data(), n, true); }, dx, 14,
                     "silu");

  auto ls_loss = [&] {
    be->logsigmoid_forward(out.data(), x.data(), scale, n);
    return dot(out, w);
  };
  dx = zeros(n);
  be->logsigmoid_backward(dx.data(), w.data(), x.data(), scale, n, true);
  EXPECT_FD_OK(fd_check(ls_loss, x, dx), "logsigmoid dinp");
  expect_accumulates(
      [&](float* g) { be->logsigmoid_backward(g, w.data(), x.data(), scale, n, true); }, dx, 15,
      "logsigmoid");

  auto sw_loss = [&] {
    be->swiglu_forward(out.data(), x.data(), up.data(), n);
    return dot(out, w);
  };
  Vec dgate = zeros(n), dup = zeros(n);
  be->swiglu_backward(dgate.data(), dup.data(), w.data(), x.data(), up.data(), n, true);
  EXPECT_FD_OK(fd_check(sw_loss, x, dgate), "swiglu dgate");
  EXPECT_FD_OK(fd_check(sw_loss, up, dup), "swiglu dup");
  expect_accumulates(
      [&](float* g) { be->swiglu_backward(g, nullptr, w.data(), x.data(), up.data(), n, true); },
      dgate, 16, "swiglu dgate");
  expect_accumulates(
      [&](float* g) { be->swiglu_backward(nullptr, g, w.data(), x.data(), up.data(), n, true); },
      dup, 17, "swiglu dup");
}

}  // namespace
}  // namespace statex
