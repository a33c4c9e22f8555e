// gemm_serial (sim/ops/cpu/gemm.h), the serial GEMM under the CPU linear layers, against a double
// triple loop: all four transpose combinations, odd sizes, row strides larger than the rows
// (sub-blocks of bigger matrices, as linear.cpp passes them), and beta 0 / 1 / other. Whatever
// library the build uses (OpenBLAS or the Eigen fallback) must pass the same test.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sim/ops/cpu/gemm.h"

namespace statex {
namespace {

struct Case {
  bool ta, tb;
  float beta;
};

TEST(GemmSerial, MatchesDoubleTripleLoop) {
  const int M = 37, N = 29, K = 61;
  const int pad = 5;  // row stride = logical row length + pad
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (Case c : {Case{false, false, 0.f}, Case{false, true, 1.f}, Case{true, false, 0.5f},
                 Case{true, true, 0.f}}) {
    // A is [M, K] or, when transposed, stored as [K, M]; same for B ([K, N] or [N, K]).
    const int a_rows = c.ta ? K : M, a_cols = c.ta ? M : K;
    const int b_rows = c.tb ? N : K, b_cols = c.tb ? K : N;
    const int lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
    std::vector<float> A(size_t(a_rows) * lda), B(size_t(b_rows) * ldb), C(size_t(M) * ldc);
    for (float& x : A) x = u(rng);
    for (float& x : B) x = u(rng);
    for (float& x : C) x = u(rng);
    const std::vector<float> C0 = C;
    gemm_serial(c.ta, c.tb, M, N, K, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < N; ++j) {
        double s = 0;
        for (int k = 0; k < K; ++k) {
          const double a = c.ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k];
          const double b = c.tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j];
          s += a * b;
        }
        const double want = s + double(c.beta) * C0[size_t(i) * ldc + j];
        ASSERT_NEAR(C[size_t(i) * ldc + j], want, 1e-5 * (K + 1))
            << gemm_library() << " ta=" << c.ta << " tb=" << c.tb << " beta=" << c.beta
            << " at (" << i << ", " << j << ")";
      }
      for (int j = N; j < ldc; ++j)  // the padding past each row is never written
        ASSERT_EQ(C[size_t(i) * ldc + j], C0[size_t(i) * ldc + j]) << gemm_library();
    }
  }
}

}  // namespace
}  // namespace statex
