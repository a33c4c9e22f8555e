// One serial fp32 GEMM on row-major storage, the building block of the CPU linear layer:
//   C [M, N] = op(A) · op(B) + beta · C,   op(X) = X or X^T,
//   A is [M, K] (or [K, M] when trans_a) with row stride lda; B is [K, N] (or [N, K]) with ldb.
// It is always serial: callers split the work into OpenMP tasks themselves (see linear.cpp).
// With OpenBLAS (STATEX_HAVE_OPENBLAS) it calls cblas_sgemm with OpenBLAS pinned to one thread;
// otherwise an Eigen product on strided maps. OpenBLAS's SGEMM kernel is ~1.4x Eigen's on the
// project's AVX2 machine (62 vs 45 GFLOP/s on one core, 2048^3; docs/performance.md).
#pragma once

namespace statex {

void gemm_serial(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc);

// "openblas" or "eigen": which library gemm_serial uses (printed by `statex bench`).
const char* gemm_library();

}  // namespace statex
