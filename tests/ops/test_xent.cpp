// CPU tests of the xent op family: softmax cross-entropy (sim/ops/cpu/xent.cpp).
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

TEST(CpuXent, ForwardMatchesDoubleAndArgmaxTakesLowestTie) {
  auto be = cpu();
  Vec logits = random_vector(size_t(kN) * kV, 60, -5.f, 5.f);
  std::vector<int> targets(kN);
  for (int i = 0; i < kN; ++i) targets[i] = (i * 13) % kV;
  // Row 0: a tie for the max at 3 and 7. Row 1: huge logits (naive exp would overflow).
  logits[3] = logits[7] = 9.f;
  for (int j = 0; j < kV; ++j) logits[kV + j] += 1000.f;
  Vec losses(kN), probs(logits.size());
  std::vector<int> pred(kN, -1);
  be->xent_forward(losses.data(), probs.data(), pred.data(), logits.data(), targets.data(), kN, kV);
  EXPECT_EQ(pred[0], 3);
  for (int i = 0; i < kN; ++i) {
    const float* z = &logits[size_t(i) * kV];
    double mx = z[0];
    int arg = 0;
    for (int j = 1; j < kV; ++j)
      if (z[j] > mx) { mx = z[j]; arg = j; }
    double se = 0;
    for (int j = 0; j < kV; ++j) se += std::exp(double(z[j]) - mx);
    double lse = mx + std::log(se);
    ASSERT_TRUE(std::isfinite(losses[i]));
    ASSERT_NEAR(losses[i], lse - z[targets[i]], 1e-5 * (1 + std::fabs(mx))) << "row " << i;
    EXPECT_EQ(pred[i], arg) << "row " << i;
    double psum = 0;
    for (int j = 0; j < kV; ++j) {
      ASSERT_NEAR(probs[i * kV + j], std::exp(double(z[j]) - lse), 1e-6) << i << "," << j;
      psum += probs[i * kV + j];
    }
    ASSERT_NEAR(psum, 1.0, 1e-5);
  }
}

TEST(CpuXent, GradientByFiniteDifferences) {
  auto be = cpu();
  Vec logits = random_vector(size_t(kN) * kV, 61, -3.f, 3.f);
  std::vector<int> targets(kN);
  for (int i = 0; i < kN; ++i) targets[i] = (i * 17 + 5) % kV;
  Vec losses(kN), probs(logits.size());
  std::vector<int> pred(kN);
  const float dloss_scale = 1.f / kN;  // mean loss
  auto loss = [&] {
    be->xent_forward(losses.data(), probs.data(), pred.data(), logits.data(), targets.data(), kN,
                     kV);
    double s = 0;
    for (float l : losses) s += l;
    return s * dloss_scale;
  };
  loss();
  Vec dlogits = zeros(logits.size());
  be->xent_backward(dlogits.data(), probs.data(), targets.data(), dloss_scale, kN, kV, true);
  // Gradients are O(1/M); tolerances scaled down accordingly.
  EXPECT_FD_OK(fd_check(loss, logits, dlogits, 1e-2, 2e-5, 2e-2, 300), "xent dlogits");
  loss();
  expect_accumulates(
      [&](float* g) {
        be->xent_backward(g, probs.data(), targets.data(), dloss_scale, kN, kV, true);
      },
      dlogits, 62, "xent");
}

}  // namespace
}  // namespace statex
