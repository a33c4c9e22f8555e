#pragma once
// The query-gap law of the task generators (docs/tasks.md) and a chi-square statistic, for the
// distribution tests of tests/test_mqar.cpp and tests/test_tasks.cpp.
#include <cmath>
#include <numeric>
#include <vector>

namespace statex::testing {

// p(g) ∝ a (g+1)^(a-1) over g in [0, space), normalised.
inline std::vector<double> power_law(int space, double a) {
  std::vector<double> p(space);
  for (int g = 0; g < space; ++g) p[g] = a * std::pow(g + 1.0, a - 1.0);
  const double sum = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= sum;
  return p;
}

// Pearson's chi-square of `counts` (n draws) against probabilities p.
inline double chi_square(const std::vector<long>& counts, const std::vector<double>& p, long n) {
  double chi2 = 0;
  for (size_t g = 0; g < p.size(); ++g) {
    const double e = p[g] * n;
    chi2 += (counts[g] - e) * (counts[g] - e) / e;
  }
  return chi2;
}

}  // namespace statex::testing
