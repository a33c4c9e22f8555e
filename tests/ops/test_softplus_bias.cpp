// CPU tests of the softplus_bias op family: softplus with bias (Mamba2 dt)
// (sim/ops/cpu/softplus_bias.cpp).
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

TEST(SoftplusBias, ForwardValuesAndThreshold) {
  CpuBackend be;
  Vec raw = {0.f, 25.f, -30.f, 19.f}, bias = {0.f}, dt(4);
  be.softplus_bias_forward(dt.data(), raw.data(), bias.data(), 4, 1);
  EXPECT_NEAR(dt[0], std::log(2.0), 1e-6);
  EXPECT_EQ(dt[1], 25.f);  // identity above threshold 20, as PyTorch
  EXPECT_GT(dt[2], 0.f);
  EXPECT_NEAR(dt[2], std::exp(-30.0), 1e-18);
  EXPECT_NEAR(dt[3], std::log1p(std::exp(19.0)), 1e-5);
}

TEST(SoftplusBias, FiniteDifference) {
  CpuBackend be;
  const int N = 13, H = 3;
  Vec raw = random_vector(size_t(N) * H, 11, -6.f, 6.f), bias = random_vector(H, 12, -2.f, 2.f);
  raw[5] = 30.f;  // exercise the identity branch (far from the threshold kink)
  Vec w = random_vector(raw.size(), 13), dt(raw.size());
  auto loss = [&] {
    be.softplus_bias_forward(dt.data(), raw.data(), bias.data(), N, H);
    return dot(dt, w);
  };
  Vec draw = zeros(raw.size()), dbias = zeros(H);
  be.softplus_bias_backward(draw.data(), dbias.data(), w.data(), raw.data(), bias.data(), N, H,
                            true);
  EXPECT_FD_OK(fd_check(loss, raw, draw), "softplus ddt_raw");
  EXPECT_FD_OK(fd_check(loss, bias, dbias), "softplus ddt_bias");
}
}  // namespace
}  // namespace statex
