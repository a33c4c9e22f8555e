// CPU tests of the conv1d op family: the causal depthwise conv1d (sim/ops/cpu/conv1d.cpp).
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

void conv1d_fd(bool with_bias) {
  CpuBackend be;
  const int B = 2, T = 13, C = 11, W = 4;
  Vec inp = random_vector(size_t(B) * T * C, 1), weight = random_vector(size_t(C) * W, 2),
      bias = random_vector(C, 3), wout = random_vector(size_t(B) * T * C, 4), out(inp.size());
  auto loss = [&] {
    be.conv1d_forward(out.data(), inp.data(), weight.data(), with_bias ? bias.data() : nullptr, B,
                      T, C, W);
    return dot(out, wout);
  };
  Vec dinp = zeros(inp.size()), dweight = zeros(weight.size()), dbias = zeros(C);
  be.conv1d_backward(dinp.data(), dweight.data(), with_bias ? dbias.data() : nullptr, wout.data(),
                     inp.data(), weight.data(), B, T, C, W, true);
  EXPECT_FD_OK(fd_check(loss, inp, dinp), "conv1d dinp");
  EXPECT_FD_OK(fd_check(loss, weight, dweight), "conv1d dweight");
  if (with_bias) {
    EXPECT_FD_OK(fd_check(loss, bias, dbias), "conv1d dbias");
  }
}

TEST(Conv1d, FiniteDifferenceWithBias) { conv1d_fd(true); }
TEST(Conv1d, FiniteDifferenceNoBias) { conv1d_fd(false); }

TEST(Conv1d, ForwardMatchesDirectSumAndIsCausal) {
  CpuBackend be;
  const int B = 2, T = 9, C = 5, W = 4;
  Vec inp = random_vector(size_t(B) * T * C, 5), weight = random_vector(size_t(C) * W, 6),
      bias = random_vector(C, 7), out(inp.size());
  be.conv1d_forward(out.data(), inp.data(), weight.data(), bias.data(), B, T, C, W);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c) {
        double s = bias[c];
        for (int j = 0; j < W; ++j) {
          int src = t - (W - 1) + j;
          if (src >= 0) s += weight[c * W + j] * inp[(size_t(b) * T + src) * C + c];
        }
        EXPECT_NEAR(out[(size_t(b) * T + t) * C + c], s, 1e-5) << b << " " << t << " " << c;
      }
}

TEST(Conv1d, BackwardAccumulates) {
  CpuBackend be;
  const int B = 2, T = 13, C = 11, W = 4;
  Vec inp = random_vector(size_t(B) * T * C, 1), weight = random_vector(size_t(C) * W, 2),
      dout = random_vector(inp.size(), 4);
  Vec d1 = zeros(inp.size()), w1 = zeros(weight.size()), b1 = zeros(C);
  Vec d2 = zeros(inp.size()), w2 = zeros(weight.size()), b2 = zeros(C);
  be.conv1d_backward(d1.data(), w1.data(), b1.data(), dout.data(), inp.data(), weight.data(), B, T,
                     C, W, true);
  for (int k = 0; k < 2; ++k)
    be.conv1d_backward(d2.data(), w2.data(), b2.data(), dout.data(), inp.data(), weight.data(), B,
                       T, C, W, true);
  for (auto* v : {&d1, &w1, &b1})
    for (auto& e : *v) e *= 2;
  EXPECT_LT(compare(d2, d1).rel_rms, 1e-6);
  EXPECT_LT(compare(w2, w1).rel_rms, 1e-6);
  EXPECT_LT(compare(b2, b1).rel_rms, 1e-6);
}

}  // namespace
}  // namespace statex
