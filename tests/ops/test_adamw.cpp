// CPU tests of the adamw op family: AdamW against a transcription of torch.optim.AdamW
// (sim/ops/cpu/adamw.cpp).
//
// Tolerance policy (see tests/support/fd_check.h): gradients by central finite differences on
// odd shapes (N=63, C=60, OC=37, V=53); forwards against direct double-precision formulas with
// tolerances of a few fp32 ulps times the size of the reduction. Accumulation semantics: every
// backward is run once into zeroed gradients (checked by FD) and once into random pre-filled
// gradients, which must end up holding prefill + gradient.
#include <gtest/gtest.h>
#include <omp.h>

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

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

// Scalar transcription of torch.optim.AdamW's single-tensor step, in double.
struct AdamWReference {
  double lr, beta1, beta2, eps, wd;
  std::vector<double> p, m, v;
  void step(const Vec& grad, double grad_scale, int t) {
    const double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = double(grad[i]) * grad_scale;
      p[i] *= 1 - lr * wd;
      m[i] += (g - m[i]) * (1 - beta1);  // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * beta2 + (1 - beta2) * g * g;
      double denom = std::sqrt(v[i]) / std::sqrt(bc2) + eps;
      p[i] -= lr / bc1 * m[i] / denom;
    }
  }
};

void run_adamw_case(float lr, float beta1, float beta2, float eps, float wd, float grad_scale,
                    float grad_size, unsigned seed) {
  auto be = cpu();
  const size_t n = 40009;  // > one parallel block, odd
  Vec p = random_vector(n, seed, -1.f, 1.f), m = zeros(n), v = zeros(n);
  AdamWReference ref{lr, beta1, beta2, eps, wd, {}, std::vector<double>(n, 0.0),
                     std::vector<double>(n, 0.0)};
  ref.p.assign(p.begin(), p.end());
  for (int t = 1; t <= 7; ++t) {
    Vec g = random_vector(n, seed * 100 + t, -grad_size, grad_size);
    g[0] = 0.f;  // zero gradient: only weight decay moves it
    be->adamw_update(p.data(), g.data(), m.data(), v.data(), n, lr, beta1, beta2, eps, wd, t,
                     grad_scale);
    ref.step(g, grad_scale, t);
  }
  // fp32 moments carry rounding of order 1e-7 of the gradient scale (m can cancel to ~0, so the
  // tolerance is absolute in units of |g|, |g|^2); the parameter change per step is <= ~lr, so
  // its fp32 error is far below 1e-6 + 1e-5 |p|.
  const double gmax = double(grad_size) * grad_scale;
  double worst_p = 0, worst_m = 0, worst_v = 0;
  for (size_t i = 0; i < n; ++i) {
    worst_p = std::max(worst_p, std::fabs(p[i] - ref.p[i]) / (1e-6 + 1e-5 * std::fabs(ref.p[i])));
    worst_m = std::max(worst_m, std::fabs(m[i] - ref.m[i]) / (1e-6 * gmax));
    worst_v = std::max(worst_v, std::fabs(v[i] - ref.v[i]) / (1e-6 * gmax * gmax));
  }
  EXPECT_LE(worst_p, 1.0) << "param differs from the PyTorch AdamW transcription";
  EXPECT_LE(worst_m, 1.0) << "exp_avg differs";
  EXPECT_LE(worst_v, 1.0) << "exp_avg_sq differs";
  // A sanity check that the comparison can fail: the parameters did move.
  Vec p0 = random_vector(n, seed, -1.f, 1.f);
  EXPECT_GT(compare(p, p0).max_abs, 2 * lr);
}

TEST(CpuOptim, AdamWMatchesPyTorchTranscription) {
  run_adamw_case(1e-2f, 0.9f, 0.999f, 1e-8f, 0.f, 1.f, 1.f, 71);
}

TEST(CpuOptim, AdamWWithWeightDecayAndGradScale) {
  run_adamw_case(3e-3f, 0.8f, 0.95f, 1e-8f, 0.1f, 0.25f, 2.f, 72);
}

// eps comparable to sqrt(vhat): checks eps is added to sqrt(vhat), after bias correction.
TEST(CpuOptim, AdamWEpsPlacement) {
  run_adamw_case(1e-2f, 0.9f, 0.99f, 1e-3f, 0.05f, 1.f, 2e-3f, 73);
}

}  // namespace
}  // namespace statex
