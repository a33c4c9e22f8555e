// gemm_serial (sim/ops/cpu/detail/gemm.h), the serial GEMM under the CPU linear layers, against a
// double triple loop: all four transpose combinations, odd sizes, row strides larger than the rows
// (sub-blocks of bigger matrices, as linear.cpp passes them), and beta 0 / 1 / other. Whatever
// library the build uses (OpenBLAS or the Eigen fallback) must pass the same test.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "sim/ops/cpu/detail/gemm.h"
#include "sim/ops/cpu/detail/small_gemm.h"

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

// small_gemm (the scans' in-place products) against a double triple loop: both layouts of A,
// the lower-triangular depth cut, overwrite and accumulate, on sizes that leave partial row tiles
// (M = 7, 33) and partial packets (N = 37: two 2-packet tiles and 5 scalar columns with AVX),
// inside bigger matrices (row strides past the logical rows).
TEST(SmallGemm, MatchesDoubleTripleLoop) {
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto random = [&](int r, int c) {
    RowMat m(r, c);
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < c; ++j) m(i, j) = u(rng);
    return m;
  };
  for (int M : {1, 7, 16, 33})
    for (int N : {1, 8, 37, 64})
      for (int K : {1, 5, 16, 32})
        for (bool trans_a : {false, true})
          for (bool lower : {false, true})
            for (bool acc : {false, true}) {
              if (lower && K < M) continue;  // the triangular cut is used with K >= M
              RowMat Abig = random(40, 40), B = random(K, N + 3), Cbig = random(M + 2, N + 5);
              // op(A) [M, K]: A stored [M, K] or [K, M], a block of a bigger matrix.
              auto A = trans_a ? Abig.block(1, 2, K, M) : Abig.block(1, 2, M, K);
              if (lower)  // zero the strict upper part of op(A)
                for (int i = 0; i < M; ++i)
                  for (int k = i + 1; k < K; ++k) (trans_a ? A(k, i) : A(i, k)) = 0.f;
              auto Bv = B.leftCols(N);
              auto C = Cbig.block(1, 2, M, N);
              const RowMat C0 = Cbig;
              if (trans_a)
                small_gemm::mm_tn(C, A, Bv, acc, lower);
              else
                small_gemm::mm(C, A, Bv, acc, lower);
              for (int i = 0; i < M; ++i)
                for (int j = 0; j < N; ++j) {
                  double s = acc ? double(C0(1 + i, 2 + j)) : 0.0;
                  for (int k = 0; k < K; ++k)
                    s += double(trans_a ? A(k, i) : A(i, k)) * double(Bv(k, j));
                  ASSERT_NEAR(C(i, j), s, 1e-5 * (K + 1))
                      << "M=" << M << " N=" << N << " K=" << K << " trans_a=" << trans_a
                      << " lower=" << lower << " acc=" << acc << " at " << i << "," << j;
                }
              // Nothing outside C is written.
              for (int i = 0; i < M + 2; ++i)
                for (int j = 0; j < N + 5; ++j)
                  if (i < 1 || i > M || j < 2 || j >= N + 2) {
                    ASSERT_EQ(Cbig(i, j), C0(i, j));
                  }
            }
}

}  // namespace
}  // namespace statex
