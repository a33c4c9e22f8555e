#include "sim/ops/cpu/detail/gemm.h"

#include "sim/core/provenance.h"

#ifdef STATEX_HAVE_OPENBLAS
#include <cblas.h>

#include <mutex>
extern "C" void openblas_set_num_threads(int);  // OpenBLAS extension, not in every cblas.h
#else
#include <Eigen/Core>
#endif

namespace statex {

// Before the first product: the portable flavour fixes Eigen's GEMM blocking (provenance.h), for
// gemm_serial and for the Eigen products inside the scans alike (every CPU op links this file).
[[maybe_unused]] static const bool kMathPinned = (pin_portable_math(), true);

#ifdef STATEX_HAVE_OPENBLAS

const char* gemm_library() { return "openblas"; }

void gemm_serial(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  // Our OpenMP tasks already use every core; OpenBLAS threads on top would oversubscribe.
  static std::once_flag serial;
  std::call_once(serial, [] { openblas_set_num_threads(1); });
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

#else

const char* gemm_library() { return "eigen"; }

namespace {
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using ConstMap = Eigen::Map<const Mat, 0, Stride>;
using Map = Eigen::Map<Mat, 0, Stride>;
}  // namespace

void gemm_serial(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                 const float* B, int ldb, float beta, float* C, int ldc) {
  ConstMap a(A, trans_a ? K : M, trans_a ? M : K, Stride(lda));
  ConstMap b(B, trans_b ? N : K, trans_b ? K : N, Stride(ldb));
  Map c(C, M, N, Stride(ldc));
  if (beta == 0.0f) c.setZero();
  else if (beta != 1.0f) c *= beta;
  // Eigen stays serial here: it is called from inside our own OpenMP parallel regions.
  if (trans_a && trans_b) c.noalias() += a.transpose() * b.transpose();
  else if (trans_a) c.noalias() += a.transpose() * b;
  else if (trans_b) c.noalias() += a * b.transpose();
  else c.noalias() += a * b;
}

#endif

}  // namespace statex
