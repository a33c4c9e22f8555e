// Rotary position embedding CPU op: forward against a direct double-precision evaluation of the
// rotate-half formula, the backward against finite differences and as the exact transpose of
// the forward, and the property attention relies on: rotated q·k depends only on t - s.
#include <cmath>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "tests/support/fd_check.h"

namespace statex {
namespace {

using testing::dot;
using testing::fd_check;
using testing::random_vector;

constexpr int B = 2, T = 63, H = 3, Dh = 20;
constexpr float kTheta = 10000.f;
constexpr size_t kN = size_t(B) * T * H * Dh;

TEST(Rope, ForwardMatchesDirectFormula) {
  CpuBackend be;
  auto x = random_vector(kN, 1);
  std::vector<float> y(kN);
  be.rope_forward(y.data(), x.data(), B, T, H, Dh, kTheta);
  const int half = Dh / 2;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < half; ++i) {
          const size_t base = ((size_t(b) * T + t) * H + h) * Dh;
          const double a = t / std::pow(double(kTheta), 2.0 * i / Dh);
          const double xa = x[base + i], xb = x[base + i + half];
          ASSERT_NEAR(y[base + i], xa * std::cos(a) - xb * std::sin(a), 1e-5);
          ASSERT_NEAR(y[base + i + half], xb * std::cos(a) + xa * std::sin(a), 1e-5);
        }
}

TEST(Rope, BackwardMatchesFiniteDifferencesAndIsTheTranspose) {
  CpuBackend be;
  auto x = random_vector(kN, 2), w = random_vector(kN, 3);
  std::vector<float> y(kN), dx(kN);
  be.rope_backward(dx.data(), w.data(), B, T, H, Dh, kTheta, false);
  auto loss = [&] {
    be.rope_forward(y.data(), x.data(), B, T, H, Dh, kTheta);
    return dot(y, w);
  };
  EXPECT_FD_OK(fd_check(loss, x, dx, 1e-2), "dx");
  // <R x, w> = <x, R^T w> to float rounding.
  EXPECT_NEAR(loss(), dot(x, dx), 1e-3);
  // accumulate = true adds.
  std::vector<float> acc(kN, 0.5f);
  be.rope_backward(acc.data(), w.data(), B, T, H, Dh, kTheta, true);
  for (size_t i = 0; i < kN; ++i) ASSERT_FLOAT_EQ(acc[i], dx[i] + 0.5f) << i;
}

TEST(Rope, RotatedDotDependsOnlyOnRelativePosition) {
  // The same q and k vector at every position: (R_t q)·(R_s k) must depend on t - s only.
  CpuBackend be;
  const int b1 = 1, h1 = 1;
  auto q0 = random_vector(Dh, 4), k0 = random_vector(Dh, 5);
  std::vector<float> q(size_t(T) * Dh), k(size_t(T) * Dh), qr(q.size()), kr(k.size());
  for (int t = 0; t < T; ++t)
    for (int d = 0; d < Dh; ++d) {
      q[size_t(t) * Dh + d] = q0[d];
      k[size_t(t) * Dh + d] = k0[d];
    }
  be.rope_forward(qr.data(), q.data(), b1, T, h1, Dh, kTheta);
  be.rope_forward(kr.data(), k.data(), b1, T, h1, Dh, kTheta);
  auto qk = [&](int t, int s) {
    double acc = 0;
    for (int d = 0; d < Dh; ++d) acc += double(qr[size_t(t) * Dh + d]) * kr[size_t(s) * Dh + d];
    return acc;
  };
  for (int delta : {0, 1, 5, 17})
    for (int s : {0, 9, 30}) EXPECT_NEAR(qk(s + delta, s), qk(delta, 0), 2e-4) << delta << " " << s;
}

}  // namespace
}  // namespace statex
