// Small row-major products for the chunked scans: a few dozen rows and columns, hot in L1.
// Eigen's general product packs both operands into blocked buffers on every call; at these sizes
// the packing and blocking set-up cost about as much as the multiply-adds. These kernels read
// the operands in place: each 4-row x 2-packet tile of C is accumulated in registers over the
// depth, A by broadcast and B by packet loads (B and C rows must be contiguous, inner stride 1).
//   mm(C, A, B, acc):     C [M, N] (+)= A [M, K] · B [K, N]
//   mm_tn(C, A, B, acc):  C [M, N] (+)= A^T · B, A stored [K, M]
//   lower_depth = true:   A (or A^T) is lower triangular with a zero strict upper part; row
//                         tile [i0, i0+4) stops its depth at i0+4.
// Arguments are Eigen row-major blocks / maps (data(), outerStride(), rows(), cols()).
#pragma once

#include <Eigen/Core>
#include <algorithm>

namespace statex::small_gemm {

namespace detail {

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int kP = Eigen::internal::packet_traits<float>::size;  // floats per packet

struct Operands {
  float* C;
  const float* A;
  const float* B;
  Eigen::Index ldc, lda, ldb;
  int N, K;
  bool trans_a, lower_depth, accumulate;
  float a(int i, int k) const { return trans_a ? A[k * lda + i] : A[i * lda + k]; }
  int depth(int i0, int rows) const { return lower_depth ? std::min(K, i0 + rows) : K; }
};

// Rows [i0, i0+R) x NP packets of columns from j0, over the depth.
template <int R, int NP>
inline void tile(const Operands& o, int i0, int j0) {
  using namespace Eigen::internal;
  Packet acc[R][NP];
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < NP; ++p) acc[r][p] = pset1<Packet>(0.f);
  const int K = o.depth(i0, R);
  for (int k = 0; k < K; ++k) {
    const float* b = o.B + k * o.ldb + j0;
    Packet bp[NP];
    for (int p = 0; p < NP; ++p) bp[p] = ploadu<Packet>(b + p * kP);
    for (int r = 0; r < R; ++r) {
      const Packet a = pset1<Packet>(o.a(i0 + r, k));
      for (int p = 0; p < NP; ++p) acc[r][p] = pmadd(a, bp[p], acc[r][p]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int p = 0; p < NP; ++p) {
      float* c = o.C + (i0 + r) * o.ldc + j0 + p * kP;
      pstoreu(c, o.accumulate ? padd(acc[r][p], ploadu<Packet>(c)) : acc[r][p]);
    }
}

// Rows [i0, i0+R), the last columns [j0, N) (fewer than a packet): scalar.
template <int R>
inline void tail(const Operands& o, int i0, int j0) {
  const int K = o.depth(i0, R);
  for (int r = 0; r < R; ++r)
    for (int j = j0; j < o.N; ++j) {
      float s = 0.f;
      for (int k = 0; k < K; ++k) s += o.a(i0 + r, k) * o.B[k * o.ldb + j];
      float& c = o.C[(i0 + r) * o.ldc + j];
      c = o.accumulate ? c + s : s;
    }
}

template <int R>
inline void row_tile(const Operands& o, int i0) {
  int j = 0;
  for (; j + 2 * kP <= o.N; j += 2 * kP) tile<R, 2>(o, i0, j);
  for (; j + kP <= o.N; j += kP) tile<R, 1>(o, i0, j);
  if (j < o.N) tail<R>(o, i0, j);
}

inline void run(const Operands& o, int M) {
  int i = 0;
  for (; i + 4 <= M; i += 4) row_tile<4>(o, i);
  for (; i < M; ++i) row_tile<1>(o, i);
}

}  // namespace detail

template <class CM, class AM, class BM>
inline void mm(CM&& C, const AM& A, const BM& B, bool accumulate, bool lower_depth = false) {
  eigen_assert(A.rows() == C.rows() && A.cols() == B.rows() && B.cols() == C.cols());
  detail::run({C.data(), A.data(), B.data(), C.outerStride(), A.outerStride(), B.outerStride(),
               int(C.cols()), int(A.cols()), false, lower_depth, accumulate},
              int(C.rows()));
}

template <class CM, class AM, class BM>
inline void mm_tn(CM&& C, const AM& A, const BM& B, bool accumulate, bool lower_depth = false) {
  eigen_assert(A.cols() == C.rows() && A.rows() == B.rows() && B.cols() == C.cols());
  detail::run({C.data(), A.data(), B.data(), C.outerStride(), A.outerStride(), B.outerStride(),
               int(C.cols()), int(A.rows()), true, lower_depth, accumulate},
              int(C.rows()));
}

}  // namespace statex::small_gemm
