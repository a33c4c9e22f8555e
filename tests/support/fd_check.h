#pragma once
// Finite-difference gradient checking shared by the op and model tests.
//
// Policy: ops run in fp32, so the check uses central differences with step h on each checked
// input element, the loss L = sum(out * w) with fixed random weights w (a random upstream
// gradient), and compares analytic vs numeric with |a - n| <= atol + rtol * max(|a|, |n|).
// fp32 central differences have truncation error O(h^2) and rounding error O(eps_f32 * |L| / h);
// with h = 1e-2..1e-3 and |L| = O(10) the numeric gradient is good to about 1e-3 absolute, which
// sets the default tolerances below. Tests state their own when they need different ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace statex::testing {

inline std::vector<float> random_vector(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}

struct FdResult {
  double worst_excess = -1;  // max over elements of |a-n| - (atol + rtol*max(|a|,|n|)); <= 0 passes
  size_t worst_index = 0;
  double worst_analytic = 0, worst_numeric = 0;
  size_t checked = 0;
};

// `loss()` recomputes the scalar loss from the current contents of `x`. `analytic` is dL/dx.
// Checks at most `max_checks` elements (evenly strided, always including first and last).
inline FdResult fd_check(const std::function<double()>& loss, std::vector<float>& x,
                         const std::vector<float>& analytic, double h = 1e-3, double atol = 2e-3,
                         double rtol = 2e-2, size_t max_checks = 64) {
  FdResult r;
  size_t n = x.size();
  size_t stride = std::max<size_t>(1, n / max_checks);
  for (size_t i = 0; i < n; i += stride) {
    size_t idx = (i + stride >= n) ? n - 1 : i;
    float saved = x[idx];
    x[idx] = saved + float(h);
    double lp = loss();
    x[idx] = saved - float(h);
    double lm = loss();
    x[idx] = saved;
    double num = (lp - lm) / (2 * h);
    double a = analytic[idx];
    double excess = std::fabs(a - num) - (atol + rtol * std::max(std::fabs(a), std::fabs(num)));
    if (excess > r.worst_excess || r.checked == 0) {
      r.worst_excess = excess;
      r.worst_index = idx;
      r.worst_analytic = a;
      r.worst_numeric = num;
    }
    ++r.checked;
    if (idx == n - 1) break;
  }
  return r;
}

inline std::string describe(const FdResult& r, const std::string& what) {
  std::ostringstream s;
  s << what << ": worst element " << r.worst_index << " analytic " << r.worst_analytic
    << " numeric " << r.worst_numeric << " (excess over tolerance " << r.worst_excess << ", "
    << r.checked << " elements checked)";
  return s.str();
}

#define EXPECT_FD_OK(result, what) \
  EXPECT_LE((result).worst_excess, 0.0) << ::statex::testing::describe((result), (what))

// Max |a-b| and relative RMS error ||a-b|| / ||b||, for comparing two implementations.
struct Diff {
  double max_abs = 0, rel_rms = 0;
  size_t worst = 0;
};
inline Diff compare(const float* a, const float* b, size_t n) {
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = std::fabs(double(a[i]) - double(b[i]));
    if (e > d.max_abs) { d.max_abs = e; d.worst = i; }
    num += e * e;
    den += double(b[i]) * double(b[i]);
  }
  d.rel_rms = std::sqrt(num / std::max(den, 1e-300));
  return d;
}
inline Diff compare(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return compare(a.data(), b.data(), std::min(a.size(), b.size()));
}

}  // namespace statex::testing
