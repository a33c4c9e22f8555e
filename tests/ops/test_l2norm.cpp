// CPU tests of the l2norm op family (sim/ops/cpu/l2norm.cpp): the row L2 norm against its
// formula and finite differences, and backward's accumulate mode.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using testing::dot;
using testing::fd_check;
using testing::random_vector;

TEST(L2Norm, ForwardFormulaAndFiniteDifferences) {
  const int N = 9, C = 61;
  const float eps = 1e-6f;
  auto x = random_vector(size_t(N) * C, 41, -2.f, 2.f);
  auto dout = random_vector(size_t(N) * C, 42);
  CpuBackend cpu;
  std::vector<float> out(x.size()), rstd(N);
  auto loss = [&] {
    cpu.l2norm_forward(out.data(), rstd.data(), x.data(), N, C, eps);
    return dot(out, dout);
  };
  loss();
  double ss = 0;
  for (int c = 0; c < C; ++c) ss += double(x[C + c]) * x[C + c];
  EXPECT_NEAR(out[C + 7], x[C + 7] / std::sqrt(ss + eps), 1e-6);
  std::vector<float> dx(x.size());
  cpu.l2norm_backward(dx.data(), dout.data(), out.data(), rstd.data(), N, C, false);
  EXPECT_FD_OK(fd_check(loss, x, dx, 1e-2, 1e-3, 2e-2, 200), "dx");
  auto dx1 = dx;
  loss();  // fd_check left out / rstd at a perturbed x
  cpu.l2norm_backward(dx.data(), dout.data(), out.data(), rstd.data(), N, C, true);
  for (size_t i = 0; i < dx.size(); ++i) ASSERT_FLOAT_EQ(dx[i], 2 * dx1[i]);
}

}  // namespace
}  // namespace statex
