// CPU tests of the sum_squares op family: the sum of squares behind the global gradient norm
// (sim/ops/cpu/sum_squares.cpp).
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

TEST(CpuOptim, SumSquaresDoubleAndThreadIndependent) {
  auto be = cpu();
  const size_t n = 300007;
  Vec x = random_vector(n, 70, -3.f, 3.f);
  double ref = 0;
  for (float v : x) ref += double(v) * v;
  testing::OmpThreads threads(1);
  double s1 = be->sum_squares(x.data(), n);
  threads.set(3);
  double s3 = be->sum_squares(x.data(), n);
  EXPECT_NEAR(s1, ref, 1e-10 * ref);
  EXPECT_EQ(s1, s3);
  EXPECT_EQ(be->sum_squares(x.data(), 0), 0.0);
}

}  // namespace
}  // namespace statex
