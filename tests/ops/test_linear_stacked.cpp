// CPU tests of the linear_stacked op family: the stacked linear (several projections of one input)
// (sim/ops/cpu/linear_stacked.cpp).
//
// Tolerance policy (see tests/support/fd_check.h): gradients by central finite differences on
// odd shapes (N=63, C=60, OC=37, V=53); forwards against direct double-precision formulas with
// tolerances of a few fp32 ulps times the size of the reduction. Accumulation semantics: every
// backward is run once into zeroed gradients (checked by FD) and once into random pre-filled
// gradients, which must end up holding prefill + gradient.
#include <gtest/gtest.h>

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
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

// Stacked projections against the level below, one linear op per part (forward, dinp in both
// gradient modes, dweight), on odd part widths and an odd C; N small (one block), mid (several
// row blocks and depth groups) and deep (several 512-row slices per depth group, ragged).
// Also the same bits with 1 and 3 threads.
TEST(CpuLinearStacked, MatchesOneLinearPerPartAndIsThreadCountIndependent) {
  auto be = cpu();
  const std::vector<int> ocs = {37, 5, 60, 1};
  const int parts = int(ocs.size()), W = stacked_width(ocs.data(), parts), C = 61;
  for (int N : {63, 1500, 9001}) {
    Vec x = random_vector(size_t(N) * C, 60), Wt = random_vector(size_t(W) * C, 61);
    std::vector<Vec> dy(parts);
    for (int i = 0; i < parts; ++i) dy[i] = random_vector(size_t(N) * ocs[i], 62 + i);
    std::vector<const float*> dyp;
    for (auto& d : dy) dyp.push_back(d.data());
    const Vec dx_init = random_vector(size_t(N) * C, 70), dW_init = random_vector(Wt.size(), 71);

    // Level below: one linear_forward / linear_backward per part (dinp accumulated over parts).
    std::vector<Vec> y_ref(parts);
    Vec dx_ref = dx_init, dW_ref = dW_init;
    for (int i = 0, row = 0; i < parts; row += ocs[i], ++i) {
      y_ref[i].resize(size_t(N) * ocs[i]);
      const float* w = Wt.data() + size_t(row) * C;
      be->linear_forward(y_ref[i].data(), x.data(), w, nullptr, N, C, ocs[i]);
      be->linear_backward(dx_ref.data(), dW_ref.data() + size_t(row) * C, nullptr, dy[i].data(),
                          x.data(), w, N, C, ocs[i], true);
    }

    std::vector<Vec> y[2];
    Vec dx_acc[2], dx_over[2], dW[2];
    testing::OmpThreads threads(1);
    for (int rep = 0; rep < 2; ++rep) {
      threads.set(rep == 0 ? 1 : 3);
      y[rep].assign(parts, Vec());
      std::vector<float*> yp;
      for (int i = 0; i < parts; ++i) {
        y[rep][i].assign(size_t(N) * ocs[i], std::nanf(""));
        yp.push_back(y[rep][i].data());
      }
      be->linear_stacked_forward(yp.data(), ocs.data(), parts, x.data(), Wt.data(), N, C);
      dx_acc[rep] = dx_init;
      dW[rep] = dW_init;
      be->linear_stacked_backward(dx_acc[rep].data(), dW[rep].data(), dyp.data(), ocs.data(),
                                  parts, x.data(), Wt.data(), N, C, true);
      dx_over[rep].assign(x.size(), std::nanf(""));  // overwrite mode never reads dinp
      be->linear_stacked_backward(dx_over[rep].data(), nullptr, dyp.data(), ocs.data(), parts,
                                  x.data(), Wt.data(), N, C, false);
    }
    for (int rep : {0, 1}) {
      SCOPED_TRACE("N=" + std::to_string(N) + (rep ? " 3 threads" : " 1 thread"));
      EXPECT_EQ(y[0], y[rep]);
      EXPECT_EQ(dx_acc[0], dx_acc[rep]);
      EXPECT_EQ(dW[0], dW[rep]);
      // Sums of C (forward), W (dinp) or N (dweight) products of size ~1, in another order.
      for (int i = 0; i < parts; ++i)
        EXPECT_LT(max_abs_diff(y[rep][i], y_ref[i]), 1e-5) << "part " << i;
      EXPECT_LT(max_abs_diff(dx_acc[rep], dx_ref), 1e-5);
      for (size_t e = 0; e < dx_over[rep].size(); ++e)
        ASSERT_NEAR(dx_over[rep][e], dx_acc[rep][e] - dx_init[e], 1e-5) << "dinp overwrite " << e;
      EXPECT_LT(max_abs_diff(dW[rep], dW_ref), 2e-6 * std::sqrt(double(N)) * 4);
    }
  }
}

}  // namespace
}  // namespace statex
