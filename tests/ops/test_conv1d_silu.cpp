// CPU tests of the conv1d_silu op family: the fused conv1d + SiLU against conv1d then SiLU
// (sim/ops/cpu/conv1d_silu.cpp).
//
// Tolerance policy:
//  - finite differences use tests/support/fd_check.h defaults (atol 2e-3, rtol 2e-2, justified
//    there: fp32 central differences with h = 1e-3 and |L| = O(10)).
//  - chunked SSD vs the recurrent reference (which computes in double): relative RMS error
//    < 1e-5 forward and < 1e-4 backward. The chunked path is fp32 with reductions of length
//    <= chunk + N (~100 terms), so its rounding error is a few eps_f32 * sqrt(terms) ~ 1e-6
//    relative; backward goes through more products (and the dt / A_log gradients through
//    differences of such terms), hence 10x more room.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <vector>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/ssd_reference.h"
#include "tests/support/cpu_ops.h"
#include "tests/support/fd_check.h"
#include "tests/support/omp_threads.h"

namespace statex {
namespace {

using namespace testing;  // tests/support: fd_check, random_vector, cpu(), kN...

// The fused conv + SiLU against the level below (conv1d then silu; silu_backward then
// conv1d_backward), forward and backward in both gradient modes, with and without bias, on odd
// shapes (T = 63, C = 60, a sequence shorter than the taps), and for identical bits with 1 and
// 3 threads. The level below is finite-difference checked in test_conv1d.cpp and
// test_activations.cpp.
TEST(Conv1dSilu, MatchesConvThenSiluAndIsThreadCountIndependent) {
  CpuBackend be;
  struct S { int B, T, C, W; bool bias; };
  for (S s : {S{2, 63, 60, 4, true}, S{3, 63, 60, 4, false}, S{5, 2, 7, 4, true}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" +
                 std::to_string(s.C) + (s.bias ? " bias" : ""));
    const size_t n = size_t(s.B) * s.T * s.C;
    Vec inp = random_vector(n, 11, -2.f, 2.f), w = random_vector(size_t(s.C) * s.W, 12),
        bias = random_vector(s.C, 13), dact = random_vector(n, 14);
    const float* bp = s.bias ? bias.data() : nullptr;
    // Level below.
    Vec pre(n), act_ref(n), dpre(n), dx_ref = random_vector(n, 15), dw_ref = zeros(w.size()),
        db_ref = zeros(s.C);
    const Vec dx_init = dx_ref;
    be.conv1d_forward(pre.data(), inp.data(), w.data(), bp, s.B, s.T, s.C, s.W);
    be.silu_forward(act_ref.data(), pre.data(), n);
    be.silu_backward(dpre.data(), dact.data(), pre.data(), n, false);
    be.conv1d_backward(dx_ref.data(), dw_ref.data(), s.bias ? db_ref.data() : nullptr, dpre.data(),
                       inp.data(), w.data(), s.B, s.T, s.C, s.W, true);
    Vec act[2], dx[2], dx_over[2], dw[2], db[2];
    testing::OmpThreads threads(1);
    for (int rep = 0; rep < 2; ++rep) {
      threads.set(rep == 0 ? 1 : 3);
      act[rep].assign(n, std::nanf(""));
      be.conv1d_silu_forward(act[rep].data(), inp.data(), w.data(), bp, s.B, s.T, s.C, s.W);
      dx[rep] = dx_init;
      dw[rep] = zeros(w.size());
      db[rep] = zeros(s.C);
      be.conv1d_silu_backward(dx[rep].data(), dw[rep].data(), s.bias ? db[rep].data() : nullptr,
                              dact.data(), inp.data(), w.data(), bp, s.B, s.T, s.C, s.W, true);
      dx_over[rep].assign(n, std::nanf(""));  // overwrite mode never reads dinp
      be.conv1d_silu_backward(dx_over[rep].data(), nullptr, nullptr, dact.data(), inp.data(),
                              w.data(), bp, s.B, s.T, s.C, s.W, false);
    }
    EXPECT_EQ(act[0], act[1]);
    EXPECT_EQ(dx[0], dx[1]);
    EXPECT_EQ(dw[0], dw[1]);
    EXPECT_EQ(db[0], db[1]);
    EXPECT_LT(compare(act[0], act_ref).rel_rms, 1e-6);
    EXPECT_LT(compare(dx[0], dx_ref).rel_rms, 1e-6);
    EXPECT_LT(compare(dw[0], dw_ref).rel_rms, 1e-6);
    if (s.bias) {
      EXPECT_LT(compare(db[0], db_ref).rel_rms, 1e-6);
    }
    Vec dx_delta(n);
    for (size_t i = 0; i < n; ++i) dx_delta[i] = dx[0][i] - dx_init[i];
    EXPECT_LT(compare(dx_over[0], dx_delta).rel_rms, 1e-5);
  }
}

}  // namespace
}  // namespace statex
