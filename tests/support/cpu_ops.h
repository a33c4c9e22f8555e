#pragma once
// Helpers shared by the CPU op tests (tests/ops/test_<stem>.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "sim/core/backend.h"
#include "tests/support/fd_check.h"

namespace statex::testing {

using Vec = std::vector<float>;

// Odd default sizes: rows, channels, output channels, vocabulary.
constexpr int kN = 63, kC = 60, kOC = 37, kV = 53;

inline std::unique_ptr<Backend> cpu() { return make_cpu_backend(); }

inline Vec zeros(size_t n) { return Vec(n, 0.f); }

inline double max_abs_diff(const Vec& a, const Vec& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// Runs `backward(grad)` into a random prefill and checks grad == prefill + expected.
// The sum rounds once in fp32, so the tolerance is a few ulps of the operands.
inline void expect_accumulates(const std::function<void(float*)>& backward, const Vec& expected,
                        unsigned seed, const char* what) {
  Vec prefill = random_vector(expected.size(), seed, -2.f, 2.f);
  Vec grad = prefill;
  backward(grad.data());
  double worst = 0;
  for (size_t i = 0; i < grad.size(); ++i) {
    double want = double(prefill[i]) + double(expected[i]);
    double tol = 1e-6 * (2.0 + std::fabs(expected[i]));
    worst = std::max(worst, std::fabs(grad[i] - want) - tol);
  }
  EXPECT_LE(worst, 0.0) << what << ": backward does not accumulate into the gradient";
}

}  // namespace statex::testing
