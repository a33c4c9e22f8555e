// CPU tests of the ssd_dskip op family: the Mamba2 D skip (sim/ops/cpu/ssd_dskip.cpp).
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

TEST(SsdDskip, FiniteDifference) {
  CpuBackend be;
  const int N = 13, H = 3, P = 5;
  Vec x = random_vector(size_t(N) * H * P, 31), D = random_vector(H, 32),
      y0 = random_vector(x.size(), 33), w = random_vector(x.size(), 34), y(x.size());
  auto loss = [&] {
    y = y0;
    be.ssd_dskip_forward(y.data(), x.data(), D.data(), N, H, P);
    return dot(y, w);
  };
  Vec dx = zeros(x.size()), dD = zeros(H);
  be.ssd_dskip_backward(dx.data(), dD.data(), w.data(), x.data(), D.data(), N, H, P, true);
  EXPECT_FD_OK(fd_check(loss, x, dx), "dskip dx");
  EXPECT_FD_OK(fd_check(loss, D, dD), "dskip dD");
}

}  // namespace
}  // namespace statex
