// Causal softmax attention, blocked fast path on the CPU (docs/design.md §1 "Softmax
// attention"; the flash-attention scheme). Per (b, h), with blocks of kBlock rows:
//   forward: for each query block I, walk the key blocks J <= I keeping a running row max m,
//     row sum l and unnormalised output acc (online softmax):
//       S = scale Q_I K_J^T (masked above the diagonal), m' = max(m, rowmax S),
//       P = exp(S - m'), l = l exp(m - m') + rowsum P, acc = acc exp(m - m') + P V_J;
//     then o_I = acc / l and lse_I = m + log l. Only [kBlock, kBlock] scores ever exist.
//   backward: P is recomputed from lse (P = exp(S - lse)), Dv_t = dout_t · o_t, and per block
//     pair (I >= J): dV_J += P^T dO_I, dP = dO_I V_J^T, dS = P ∘ (dP - Dv_I),
//     dK_J += scale dS^T Q_I, dQ_I += scale dS K_J.
// The block products are small_gemm's in-place register-tiled products (no packing per call).
// Threading: OpenMP over (b, h) pairs; each pair is computed and written by one thread, so the
// results do not depend on the thread count.
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

#include "sim/ops/cpu/cpu_backend.h"
#include "sim/ops/cpu/detail/grad_store.h"
#include "sim/ops/cpu/detail/small_gemm.h"

namespace statex {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColVec = Eigen::VectorXf;
using StridedConst = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using StridedMut = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

// 32 rows: a [32, 32] score block and [32, Dh] operands stay in L1 for Dh <= 64, and T = 64
// (the canonical MQAR length) is two blocks, so the causal skip saves a quarter of the work.
constexpr int kBlock = 32;

// The [T, Dh] slice of a [B, T, H, Dh] tensor belonging to head (b, h).
StridedConst head_view(const float* p, int b, int h, int T, int H, int Dh) {
  return StridedConst(p + (size_t(b) * T * H + h) * Dh, T, Dh,
                      Eigen::OuterStride<>(size_t(H) * Dh));
}
StridedMut head_view(float* p, int b, int h, int T, int H, int Dh) {
  return StridedMut(p + (size_t(b) * T * H + h) * Dh, T, Dh, Eigen::OuterStride<>(size_t(H) * Dh));
}

// Scores of query block [i0, i0+rows) against key block [j0, j0+cols): S = Qs K^T with Qs the
// pre-scaled queries and KT = K^T [Dh, T], and -inf above the diagonal (s > t) when the blocks
// overlap it.
void scores(RowMat& S, const RowMat& Qs, const RowMat& KT, int i0, int rows, int j0, int cols) {
  S.resize(rows, cols);
  small_gemm::mm(S, Qs.middleRows(i0, rows), KT.middleCols(j0, cols), false);
  if (j0 + cols - 1 > i0)
    for (int r = 0; r < rows; ++r)
      for (int c = std::max(0, i0 + r - j0 + 1); c < cols; ++c)
        S(r, c) = -std::numeric_limits<float>::infinity();
}

// Per-thread buffers, reused across (b, h) pairs. Operands of the small in-place products
// (small_gemm.h) are row-major with contiguous rows, so K and V are also kept transposed.
struct PairScratch {
  RowMat Qs, K, KT, V, VT, O, dO, dQ, dK, dV, S, dP, acc;
  ColVec m, l, Dv;
  void load(const float* q, const float* k, const float* v, int b, int h, int T, int H, int Dh,
            float scale) {
    Qs = scale * head_view(q, b, h, T, H, Dh);
    K = head_view(k, b, h, T, H, Dh);
    KT = K.transpose();
    V = head_view(v, b, h, T, H, Dh);
  }
};

// fn(scratch, bh, b, h) for every (b, h) pair, OpenMP over pairs, one scratch per thread.
template <class Fn>
void for_each_head(int B, int H, Fn&& fn) {
#pragma omp parallel
  {
    PairScratch w;
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; ++bh) fn(w, bh, bh / H, bh % H);
  }
}

}  // namespace

void CpuBackend::attention_forward(float* o, float* lse, const float* q, const float* k,
                                   const float* v, int B, int T, int H, int Dh, float scale) {
  for_each_head(B, H, [&](PairScratch& w, int bh, int b, int h) {
    w.load(q, k, v, b, h, T, H, Dh, scale);
    StridedMut O = head_view(o, b, h, T, H, Dh);
    for (int i0 = 0; i0 < T; i0 += kBlock) {
      const int rows = std::min(kBlock, T - i0);
      w.m.setConstant(rows, -std::numeric_limits<float>::infinity());
      w.l.setZero(rows);
      w.acc.setZero(rows, Dh);
      for (int j0 = 0; j0 <= i0; j0 += kBlock) {  // key blocks up to the diagonal one
        const int cols = std::min(kBlock, T - j0);
        scores(w.S, w.Qs, w.KT, i0, rows, j0, cols);
        for (int r = 0; r < rows; ++r) {
          // Row r always has a finite entry (column 0 of the first block: s = 0 <= t).
          const float m_new = std::max(w.m(r), w.S.row(r).maxCoeff());
          const float alpha = std::exp(w.m(r) - m_new);  // exp(-inf) = 0 on the first block
          w.S.row(r) = (w.S.row(r).array() - m_new).exp().matrix();
          w.l(r) = w.l(r) * alpha + w.S.row(r).sum();
          w.acc.row(r) *= alpha;
          w.m(r) = m_new;
        }
        small_gemm::mm(w.acc, w.S, w.V.middleRows(j0, cols), true);
      }
      O.middleRows(i0, rows) = w.l.cwiseInverse().asDiagonal() * w.acc;
      if (lse)
        for (int r = 0; r < rows; ++r) lse[size_t(bh) * T + i0 + r] = w.m(r) + std::log(w.l(r));
    }
  });
}

void CpuBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout,
                                    const float* q, const float* k, const float* v, const float* o,
                                    const float* lse, int B, int T, int H, int Dh, float scale,
                                    bool accumulate) {
  for_each_head(B, H, [&](PairScratch& w, int bh, int b, int h) {
    w.load(q, k, v, b, h, T, H, Dh, scale);
    w.VT = w.V.transpose();
    w.dO = head_view(dout, b, h, T, H, Dh);
    w.O = head_view(o, b, h, T, H, Dh);
    // Dv_t = dout_t · o_t = sum_s P[t, s] dP[t, s] (the softmax backward's row term).
    w.Dv = (w.dO.array() * w.O.array()).rowwise().sum().matrix();
    const Eigen::Map<const ColVec> L(lse + size_t(bh) * T, T);
    w.dQ.setZero(T, Dh);
    w.dK.setZero(T, Dh);
    w.dV.setZero(T, Dh);
    for (int j0 = 0; j0 < T; j0 += kBlock) {
      const int cols = std::min(kBlock, T - j0);
      for (int i0 = j0; i0 < T; i0 += kBlock) {  // query blocks on or below the diagonal
        const int rows = std::min(kBlock, T - i0);
        scores(w.S, w.Qs, w.KT, i0, rows, j0, cols);
        // P = exp(S - lse): exactly the forward's probabilities (exp(-inf) = 0 above the
        // diagonal), recomputed instead of stored.
        w.S = (w.S.colwise() - L.segment(i0, rows)).array().exp().matrix();
        small_gemm::mm_tn(w.dV.middleRows(j0, cols), w.S, w.dO.middleRows(i0, rows), true);
        w.dP.resize(rows, cols);
        small_gemm::mm(w.dP, w.dO.middleRows(i0, rows), w.VT.middleCols(j0, cols), false);
        // dS / scale (in dP's buffer) = P ∘ (dP - Dv). With the pre-scaled queries,
        // dK_J += (dS / scale)^T Qs is exact; dQ gets its factor scale once at the end.
        w.dP = (w.S.array() * (w.dP.colwise() - w.Dv.segment(i0, rows)).array()).matrix();
        small_gemm::mm_tn(w.dK.middleRows(j0, cols), w.dP, w.Qs.middleRows(i0, rows), true);
        small_gemm::mm(w.dQ.middleRows(i0, rows), w.dP, w.K.middleRows(j0, cols), true);
      }
    }
    if (dq) store_grad(head_view(dq, b, h, T, H, Dh), scale * w.dQ, accumulate);
    if (dk) store_grad(head_view(dk, b, h, T, H, Dh), w.dK, accumulate);
    if (dv) store_grad(head_view(dv, b, h, T, H, Dh), w.dV, accumulate);
  });
}

}  // namespace statex
