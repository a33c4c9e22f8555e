// CPU tests of the gla_norm op family: the GLA output norm (RMSNorm + swish gate)
// (sim/ops/cpu/gla_norm.cpp).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/gla_reference.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

TEST(GlaNorm, GradientsMatchFiniteDifferences) {
  const int N = 9, C = 61;
  const float eps = 1e-5f;
  auto x = random_vector(size_t(N) * C, 21, -2.f, 2.f);
  auto g = random_vector(size_t(N) * C, 22, -3.f, 3.f);
  auto w = random_vector(C, 23, 0.5f, 1.5f);
  auto dout = random_vector(size_t(N) * C, 24);
  CpuBackend cpu;
  std::vector<float> out(size_t(N) * C), rstd(N);
  auto loss = [&] {
    cpu.gla_norm_forward(out.data(), rstd.data(), x.data(), g.data(), w.data(), N, C, eps);
    return dot(out, dout);
  };
  loss();
  // Direct check of one forward element against the formula.
  {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += double(x[c]) * x[c];
    const double rs = 1 / std::sqrt(ss / C + eps), g5 = g[5];
    EXPECT_NEAR(out[5], x[5] * rs * w[5] * g5 / (1 + std::exp(-g5)), 1e-5);
  }
  std::vector<float> dx(x.size()), dg(g.size()), dw(C);
  cpu.gla_norm_backward(dx.data(), dg.data(), dw.data(), dout.data(), x.data(), g.data(), w.data(),
                        rstd.data(), N, C, true);
  EXPECT_FD_OK(fd_check(loss, x, dx, 1e-2, 2e-3, 2e-2, 200), "dx");
  EXPECT_FD_OK(fd_check(loss, g, dg, 1e-2, 2e-3, 2e-2, 200), "dg");
  EXPECT_FD_OK(fd_check(loss, w, dw, 1e-2, 2e-3, 2e-2, 200), "dweight");
  // Accumulation: a second call doubles every gradient.
  auto dx1 = dx, dg1 = dg, dw1 = dw;
  cpu.gla_norm_backward(dx.data(), dg.data(), dw.data(), dout.data(), x.data(), g.data(), w.data(),
                        rstd.data(), N, C, true);
  for (size_t i = 0; i < dx.size(); ++i) {
    ASSERT_FLOAT_EQ(dx[i], 2 * dx1[i]);
    ASSERT_FLOAT_EQ(dg[i], 2 * dg1[i]);
  }
  for (int c = 0; c < C; ++c) ASSERT_FLOAT_EQ(dw[c], 2 * dw1[c]);
}

}  // namespace
}  // namespace statex
