// Linear layer: out [N, OC] = inp [N, C] · weight [OC, C]^T + bias [OC].
// The three products are Eigen GEMMs on row-major maps; Eigen parallelises them over output
// blocks with OpenMP (the reduction dimension is never split across threads), so results are
// deterministic for a fixed thread count.
#include <Eigen/Core>

#include "sim/ops/cpu/cpu_backend.h"

namespace statex {

namespace {
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<Mat>;
using ConstMatMap = Eigen::Map<const Mat>;
using ConstVecMap = Eigen::Map<const Eigen::RowVectorXf>;
using VecMap = Eigen::Map<Eigen::RowVectorXf>;
}  // namespace

void CpuBackend::linear_forward(float* out, const float* inp, const float* weight,
                                const float* bias, int N, int C, int OC) {
  MatMap y(out, N, OC);
  ConstMatMap x(inp, N, C);
  ConstMatMap w(weight, OC, C);
  y.noalias() = x * w.transpose();
  if (bias) {
    ConstVecMap b(bias, OC);
    const bool parallel = (long long)N * OC >= (1 << 15);
#pragma omp parallel for schedule(static) if (parallel)
    for (int i = 0; i < N; ++i) y.row(i) += b;
  }
}

// dinp [N, C] += dout · weight;  dweight [OC, C] += dout^T · inp;  dbias [OC] += sum_rows dout.
void CpuBackend::linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int N, int C, int OC) {
  ConstMatMap dy(dout, N, OC);
  if (dinp) MatMap(dinp, N, C).noalias() += dy * ConstMatMap(weight, OC, C);
  if (dweight) MatMap(dweight, OC, C).noalias() += dy.transpose() * ConstMatMap(inp, N, C);
  if (dbias) {
    // Column sums: threads own column blocks and sum rows in order (thread-count independent).
    constexpr int kColBlock = 256;
    const int blocks = (OC + kColBlock - 1) / kColBlock;
    const bool parallel = blocks > 1 && (long long)N * OC >= (1 << 16);
#pragma omp parallel for schedule(static) if (parallel)
    for (int blk = 0; blk < blocks; ++blk) {
      const int c0 = blk * kColBlock;
      const int width = c0 + kColBlock < OC ? kColBlock : OC - c0;
      Eigen::RowVectorXf acc = Eigen::RowVectorXf::Zero(width);
      for (int i = 0; i < N; ++i) acc += dy.row(i).segment(c0, width);
      VecMap(dbias + c0, width) += acc;
    }
  }
}

}  // namespace statex
