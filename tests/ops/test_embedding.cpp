// CPU tests of the embedding op family: embedding (sim/ops/cpu/embedding.cpp).
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

TEST(CpuEmbedding, ForwardGathersAndBackwardAddsRepeatedTokens) {
  auto be = cpu();
  const int D = kC;
  std::vector<int> tokens(kN);
  for (int i = 0; i < kN; ++i) tokens[i] = (i * i + 3) % 11;  // many repeats, rows 11.. unused
  Vec wte = random_vector(size_t(kV) * D, 20), out(size_t(kN) * D);
  be->embedding_forward(out.data(), tokens.data(), wte.data(), kN, D);
  for (int i = 0; i < kN; ++i)
    for (int c = 0; c < D; ++c) ASSERT_EQ(out[i * D + c], wte[tokens[i] * D + c]);

  Vec w = random_vector(out.size(), 21);
  auto loss = [&] {
    be->embedding_forward(out.data(), tokens.data(), wte.data(), kN, D);
    return dot(out, w);
  };
  Vec dwte = zeros(wte.size());
  be->embedding_backward(dwte.data(), w.data(), tokens.data(), kN, D);
  std::vector<double> ref(wte.size(), 0.0);
  for (int i = 0; i < kN; ++i)
    for (int c = 0; c < D; ++c) ref[tokens[i] * D + c] += w[i * D + c];
  for (size_t k = 0; k < ref.size(); ++k) ASSERT_NEAR(dwte[k], ref[k], 1e-5) << k;
  EXPECT_FD_OK(fd_check(loss, wte, dwte, 1e-2, 2e-3, 2e-2, 400), "embedding dwte");
  expect_accumulates([&](float* g) { be->embedding_backward(g, w.data(), tokens.data(), kN, D); },
                     dwte, 22, "embedding");
}

}  // namespace
}  // namespace statex
