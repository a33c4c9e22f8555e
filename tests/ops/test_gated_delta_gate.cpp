// CPU tests of the gated_delta_gate op family (sim/ops/cpu/gated_delta_gate.cpp): the Gated
// DeltaNet gates g = -exp(A_log) softplus(a + dt_bias), beta = beta_scale sigmoid(b) against
// their formula and finite differences.
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

TEST(GatedDeltaGate, ForwardFormulaAndFiniteDifferences) {
  const int N = 37, H = 3;
  auto a = random_vector(size_t(N) * H, 31, -4.f, 4.f);
  auto braw = random_vector(size_t(N) * H, 32, -4.f, 4.f);
  auto A_log = random_vector(H, 33, -1.f, 2.f);
  auto dt_bias = random_vector(H, 34, -3.f, 1.f);
  auto dgo = random_vector(size_t(N) * H, 35), dbo = random_vector(size_t(N) * H, 36);
  for (float beta_scale : {1.f, 2.f}) {
    SCOPED_TRACE(beta_scale);
    CpuBackend cpu;
    std::vector<float> g(size_t(N) * H), beta(size_t(N) * H);
    auto loss = [&] {
      cpu.gated_delta_gate_forward(g.data(), beta.data(), a.data(), braw.data(), A_log.data(),
                                   dt_bias.data(), N, H, beta_scale);
      return dot(g, dgo) + dot(beta, dbo);
    };
    loss();
    const int i = 3 * H + 2;  // row 3, head 2
    const double v = double(a[i]) + dt_bias[2];
    EXPECT_NEAR(g[i], -std::exp(double(A_log[2])) * std::log1p(std::exp(v)), 1e-5);
    EXPECT_NEAR(beta[i], beta_scale / (1 + std::exp(-double(braw[i]))), 1e-6);
    std::vector<float> da(a.size()), db(braw.size()), dA(H, 0.f), ddt(H, 0.f);
    cpu.gated_delta_gate_backward(da.data(), db.data(), dA.data(), ddt.data(), dgo.data(),
                                  dbo.data(), a.data(), braw.data(), A_log.data(), dt_bias.data(),
                                  N, H, beta_scale, false);
    EXPECT_FD_OK(fd_check(loss, a, da, 1e-2), "da_raw");
    EXPECT_FD_OK(fd_check(loss, braw, db, 1e-2), "db_raw");
    EXPECT_FD_OK(fd_check(loss, A_log, dA, 1e-3), "dA_log");
    EXPECT_FD_OK(fd_check(loss, dt_bias, ddt, 1e-3), "ddt_bias");
  }
}

}  // namespace
}  // namespace statex
